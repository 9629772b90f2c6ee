"""Registered land changes, as a land officer files them: over HTTP against a real server
on its own database (Ba Đình's sample parcels, its plan and Hà Nội's price table, loaded
as the application role), every kind, every refusal, two officers at once, a registration
killed half way, and nothing personal in a public answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import shapely.geometry as sg
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine

from cadastre.dossiers import Actor, DossierError, DossierService
from landplatform.auth.tokens import LOCAL_AUDIENCE, issue_local
from landplatform.db import make_engine
from landplatform.domain import extensions
from landplatform.roles import APP
from lis import DOMAINS
from support import (
    SAMPLES,
    TEST_AUTH_SECRET,
    create_database,
    free_port,
    role_env,
    role_url,
    serving,
)

DISTRICT = "001"
RECEIVED = "2026-11-30"


def token(role: str, district: str | None = None) -> dict[str, str]:
    tok = issue_local(TEST_AUTH_SECRET, sub=f"{role}-{district or 'all'}", role=role,
                      district=district, ttl_s=3600, audience=LOCAL_AUDIENCE)
    return {"Authorization": f"Bearer {tok}"}


OFFICER = token("officer", DISTRICT)


@pytest.fixture(scope="module")
def db_url(server_url: URL, tmp_path_factory: pytest.TempPathFactory) -> URL:
    url = create_database(server_url, "lis_dossiers")
    env = {**os.environ, **role_env(url), "LIS_VAR_DIR": str(tmp_path_factory.mktemp("v"))}
    for args in (["parcels", str(SAMPLES / "parcels_001_ba_dinh.shp"), "--quiet"],
                 ["plan", str(SAMPLES / "plans" / "zoning_001_ba_dinh.shp"), "--quiet"],
                 ["prices", str(SAMPLES / "prices" / "bang_gia_dat_ha_noi_2026.xlsx"),
                  "--segments", str(SAMPLES / "prices" / "doan_duong_ha_noi.gpkg"), "--quiet"],
                 ["split-rules", str(SAMPLES / "split_rules.csv")]):
        done = subprocess.run([sys.executable, "-m", "lis.cli", "load", *args],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    return url


@pytest.fixture(scope="module")
def db(db_url: URL) -> Iterator[Engine]:
    engine = make_engine(db_url)  # the superuser: the tests' own checks
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def server(db_url: URL, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    roles = role_env(db_url)
    del roles["LIS_OWNER_DATABASE_URL"]
    env = {**os.environ, **roles, "PORT": str(free_port()), "HOST": "127.0.0.1",
           "LIS_VAR_DIR": str(tmp_path_factory.mktemp("var")), "LIS_WORKERS": "1",
           "LIS_AUTH_SECRET": TEST_AUTH_SECRET}
    with serving(env, tmp_path_factory.mktemp("log") / "serve.log") as served:
        yield served.base


_receipts = iter(range(1, 10**6))


def dossier(kind: str, parcels: list, **fields: object) -> dict:
    return {"kind": kind, "receipt_no": f"001-2026-{next(_receipts):06d}",
            "procedure": "TTHC 1.004227", "received_date": RECEIVED,
            "documents": [{"title": "Đơn đề nghị", "ref": "scan-0001.pdf"}],
            "parcels": parcels, **fields}


def post(server: str, body: dict, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{server}/cadastre/dossiers", json=body,
                      headers=OFFICER if headers is None else headers, timeout=60)


def parcel(db: Engine, where: str, params: dict | None = None) -> dict:
    """A current Ba Đình parcel by a condition, with its geometry (WGS84 GeoJSON)."""
    with db.connect() as conn:
        row = conn.execute(text(f"""
        SELECT uid, commune_code || '.' || sheet_no || '.' || parcel_no AS ref, land_use,
               area_m2::float8 AS area, ST_AsGeoJSON(geom, 9) AS g, commune_code, sheet_no
          FROM cadastre.parcel p
         WHERE district_code = '{DISTRICT}' AND status = 'current' AND {where}
           AND NOT EXISTS (SELECT 1 FROM cadastre.dossier d WHERE p.uid = ANY(d.parcels))
         ORDER BY uid LIMIT 1
        """), params or {}).mappings().one()
    return {**row, "shape": sg.shape(json.loads(row["g"]))}


def scalar(db: Engine, sql: str, params: dict | None = None) -> object:
    with db.connect() as conn:
        return conn.execute(text(sql), params or {}).scalar()


def halves(shape: sg.base.BaseGeometry, at: float = 0.5) -> list[dict]:
    x0, y0, x1, y1 = shape.bounds
    cut = x0 + (x1 - x0) * at
    return [sg.mapping(shape.intersection(sg.box(x0 - 1, y0 - 1, cut, y1 + 1))),
            sg.mapping(shape.intersection(sg.box(cut, y0 - 1, x1 + 1, y1 + 1)))]


def rules(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    return {r["rule"] for r in response.json()["reasons"]}


def public_refs(server: str, refs: list[str]) -> set[str]:
    quoted = ", ".join(f"'{r}'" for r in refs)
    r = httpx.get(f"{server}/collections/parcels-{DISTRICT}/items",
                  params={"filter": f"parcel_ref IN ({quoted})", "limit": 50}, timeout=30)
    assert r.status_code == 200, r.text
    return {f["properties"]["parcel_ref"] for f in r.json()["features"]}


# --------------------------------------------------------------------------- split, merge
def test_split_pending_then_registered_with_history_lineage_rights_and_audit(
        server: str, db: Engine) -> None:
    p = parcel(db, "land_use = 'ODT' AND area_m2 BETWEEN 400 AND 20000 AND EXISTS ("
                   "SELECT 1 FROM restricted.land_right r WHERE r.parcel_uid = p.uid "
                   "AND r.valid_to IS NULL)")
    filed = post(server, dossier("split", [p["ref"]], children=[
        {"geometry": g} for g in halves(p["shape"])]))
    assert filed.status_code == 201, filed.text
    doc = filed.json()
    assert doc["state"] == "filed" and doc["officer"] == "officer-001"
    children = [f["properties"]["parcel_ref"] for f in doc["parcels"]["features"]]
    top = scalar(db, "SELECT max(parcel_no) FROM cadastre.parcel WHERE commune_code = :c "
                 "AND sheet_no = :s AND dossier_id IS DISTINCT FROM :d",
                 {"c": p["commune_code"], "s": p["sheet_no"], "d": doc["dossier_id"]})
    assert children == [f"{p['commune_code']}.{p['sheet_no']}.{top + i}" for i in (1, 2)]
    assert {f["properties"]["status"] for f in doc["parcels"]["features"]} == {"pending"}
    assert public_refs(server, children) == set()  # pending: not in a public feed
    assert public_refs(server, [p["ref"]]) == {p["ref"]}
    # the officer sees the dossier; the public does not, another district's officer neither
    shown = f"{server}/cadastre/dossiers/{doc['dossier_id']}"
    assert httpx.get(shown, headers=OFFICER).json()["parcels"] == doc["parcels"]
    assert httpx.get(shown).status_code == 401
    assert httpx.get(shown, headers=token("officer", "003")).status_code == 403

    done = httpx.post(f"{shown}/register", headers=OFFICER, timeout=60)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "registered"
    assert public_refs(server, children) == set(children)
    assert public_refs(server, [p["ref"]]) == set()
    with db.connect() as conn:
        status = conn.execute(text("SELECT status FROM cadastre.parcel WHERE uid = :u"),
                              {"u": p["uid"]}).scalar()
        history = conn.execute(text("SELECT count(*) FROM cadastre.parcel_history "
                                    "WHERE uid = :u AND dossier_id = :d"),
                               {"u": p["uid"], "d": doc["dossier_id"]}).scalar()
        lineage = conn.execute(text("""
            SELECT c.commune_code || '.' || c.sheet_no || '.' || c.parcel_no AS ref,
                   l.kind, l.shared_area_m2::float8 AS shared, c.computed_area_m2::float8 AS a
              FROM cadastre.parcel_lineage l JOIN cadastre.parcel c ON c.uid = l.child_uid
             WHERE l.parent_uid = :u ORDER BY 1"""), {"u": p["uid"]}).mappings().all()
        holders = conn.execute(text("""
            SELECT parcel_uid, array_agg(party_id ORDER BY party_id) AS parties
              FROM restricted.land_right
             WHERE valid_to IS NULL AND parcel_uid IN (SELECT uid FROM cadastre.parcel
                                                        WHERE dossier_id = :d)
             GROUP BY parcel_uid"""), {"d": doc["dossier_id"]}).all()
        parent_holders = conn.execute(text(
            "SELECT array_agg(party_id ORDER BY party_id) FROM restricted.land_right "
            "WHERE parcel_uid = :u AND valid_to IS NOT NULL"), {"u": p["uid"]}).scalar()
        audit = conn.execute(text("SELECT actor_sub, after FROM audit.write_log "
                                  "WHERE action = 'register' AND parcel_uid = :u"),
                             {"u": p["uid"]}).one()
    assert status == "historic" and history == 1
    assert [r["ref"] for r in lineage] == children
    assert {r["kind"] for r in lineage} == {"split"}
    for r in lineage:  # the area a child shares with its parent is the child's own
        assert abs(r["shared"] - r["a"]) <= 0.2
    assert len(holders) == 2 and all(h.parties == parent_holders for h in holders)
    assert audit.actor_sub == "officer-001" and audit.after["kind"] == "split"
    assert set(audit.after["parcels"]) == {p["ref"], *children}


def test_split_refusals_are_located_and_leave_nothing(server: str, db: Engine) -> None:
    p = parcel(db, "land_use = 'ODT' AND area_m2 BETWEEN 400 AND 20000")
    x0, y0, x1, y1 = p["shape"].bounds
    before = scalar(db, "SELECT count(*) FROM cadastre.parcel")
    # a child below Hà Nội's 50 m² for ODT in a ward
    sliver = 30 / p["area"]
    r = post(server, dossier("split", [p["ref"]], children=[
        {"geometry": g} for g in halves(p["shape"], sliver)]))
    assert "min_split_area" in rules(r)
    minimum = next(x for x in r.json()["reasons"] if x["rule"] == "min_split_area")
    assert minimum["parcel"] == "child 1" and "61/2024" in minimum["reason"]
    assert 0 < minimum["by_m2"] < 50
    # children that overlap, leave a gap, reach outside
    left, right = halves(p["shape"])
    grown = sg.mapping(sg.shape(left).buffer((x1 - x0) * 0.05).intersection(p["shape"]))
    assert "no_overlap" in rules(post(server, dossier("split", [p["ref"]], children=[
        {"geometry": grown}, {"geometry": right}])))
    shrunk = sg.mapping(sg.shape(left).buffer(-(x1 - x0) * 0.05))
    assert "tile_parent" in rules(post(server, dossier("split", [p["ref"]], children=[
        {"geometry": shrunk}, {"geometry": right}])))
    outside = sg.mapping(sg.shape(right).buffer((x1 - x0) * 0.05))
    assert "inside_parent" in rules(post(server, dossier("split", [p["ref"]], children=[
        {"geometry": left}, {"geometry": outside}])))
    taken = post(server, dossier("split", [p["ref"]], children=[
        {"geometry": left, "parcel_no": 1}, {"geometry": right}]))
    assert "numbering" in rules(taken)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cadastre.parcel")).scalar() == before
        refused = conn.execute(text("SELECT count(*) FROM cadastre.dossier WHERE state = "
                                    "'refused' AND :u = ANY(parcels)"), {"u": p["uid"]}
                               ).scalar()
    assert refused == 5  # the office keeps its refusals, with their reasons


def test_merge_of_adjacent_parcels_of_one_holder_and_its_refusals(server: str,
                                                                  db: Engine) -> None:
    p = parcel(db, "land_use = 'ODT' AND area_m2 BETWEEN 400 AND 20000")
    split = post(server, dossier("split", [p["ref"]], register=True, children=[
        {"geometry": g} for g in halves(p["shape"])]))
    assert split.status_code == 201 and split.json()["state"] == "registered", split.text
    children = [f["properties"]["parcel_ref"] for f in split.json()["parcels"]["features"]]
    merged = post(server, dossier("merge", children, register=True))
    assert merged.status_code == 201, merged.text
    (result,) = merged.json()["parcels"]["features"]
    assert result["properties"]["status"] == "current"
    assert abs(sg.shape(result["geometry"]).area - p["shape"].area) / p["shape"].area < 1e-6
    assert public_refs(server, children) == set()
    # two parcels far apart with other holders: both reasons at once
    a = parcel(db, "land_use = 'ODT' AND sheet_no = 1")
    b = parcel(db, "land_use = 'ODT' AND sheet_no > 3 AND NOT EXISTS (SELECT 1 FROM "
                   "restricted.land_right r JOIN restricted.land_right s ON s.party_id = "
                   "r.party_id WHERE r.parcel_uid = p.uid AND s.parcel_uid = :a)", {"a": a["uid"]})
    assert {"adjacent", "same_holders"} <= rules(post(server, dossier("merge", [a["ref"],
                                                                                b["ref"]])))


# --------------------------------------------------------------------------- change of use
def test_change_of_use_follows_the_plan_and_states_the_fee_basis(server: str,
                                                                 db: Engine) -> None:
    """Planning's rule and valuation's prices arrive through the cadastre's extension
    points: the cadastre imports neither."""
    zone = """SELECT z.planned_use FROM planning.zone z
               WHERE ST_Covers(z.geom, ST_PointOnSurface(p.geom)) LIMIT 1"""
    against = parcel(db, f"land_use NOT LIKE '%+%' AND ({zone}) <> 'CLN'")
    refused = post(server, dossier("change_of_use", [against["ref"]], land_use="CLN"))
    (why,) = refused.json()["reasons"]
    assert why["rule"] == "approved_plan" and why["source"].startswith("planning: ")
    assert "CLN covers 0%" in why["reason"]
    # to what the plan says, on a parcel the price table prices as both uses
    agree = parcel(db, f"land_use = 'ODT' AND ({zone}) = 'TMD'")
    done = post(server, dossier("change_of_use", [agree["ref"]], land_use="TMD",
                                register=True))
    assert done.status_code == 201, done.text
    fee = done.json()["result"]["fee_basis"]
    assert fee["priced"] and fee["old_use"] == "ODT" and fee["new_use"] == "TMD"
    assert fee["fee_basis_vnd"] == round((fee["new_unit_price"] - fee["old_unit_price"])
                                         * fee["area_m2"])
    assert fee["source"].startswith("HN-")
    with db.connect() as conn:
        use = conn.execute(text("SELECT land_use FROM cadastre.parcel WHERE uid = :u"),
                           {"u": agree["uid"]}).scalar()
        event = conn.execute(text("SELECT kind FROM cadastre.parcel_event "
                                  "WHERE parcel_uid = :u AND dossier_id IS NOT NULL"),
                             {"u": agree["uid"]}).scalar()
    assert use == "TMD" and event == "change_of_purpose"


# --------------------------------------------------------------------------- corrections
def test_correction_and_recovery(server: str, db: Engine) -> None:
    p = parcel(db, "land_use = 'ODT' AND area_m2 BETWEEN 400 AND 20000")
    fixed = post(server, dossier("correction", [p["ref"]], address="Số 5 ngõ 12 Đội Cấn",
                                 register=True))
    assert fixed.status_code == 201, fixed.text
    neighbour = parcel(db, "uid <> :u AND ST_Touches(geom, (SELECT geom FROM cadastre.parcel "
                           "WHERE uid = :u))", {"u": p["uid"]})
    over = sg.mapping(p["shape"].union(neighbour["shape"].buffer(-1e-6)))
    assert "no_overlap" in rules(post(server, dossier("correction", [p["ref"]],
                                                      geometry=over)))
    left, _ = halves(p["shape"], 0.3)
    part = post(server, dossier("recovery", [p["ref"]], geometry=left, register=True))
    assert part.status_code == 201, part.text
    recovered = part.json()["result"]["recovered_m2"]
    with db.connect() as conn:
        row = conn.execute(text("SELECT status, area_m2::float8 AS a, address FROM "
                                "cadastre.parcel WHERE uid = :u"), {"u": p["uid"]}).one()
        versions = conn.execute(text("SELECT count(*) FROM cadastre.parcel_history "
                                     "WHERE uid = :u"), {"u": p["uid"]}).scalar()
    assert row.status == "current" and row.address == "Số 5 ngõ 12 Đội Cấn"
    assert recovered > 0 and row.a < p["area"]
    assert versions == 2  # the correction's and the recovery's superseded versions
    whole = post(server, dossier("recovery", [p["ref"]], register=True))
    assert whole.status_code == 201
    assert public_refs(server, [p["ref"]]) == set()


# --------------------------------------------------------------------------- rights
def test_rights_mortgage_freeze_and_transfer(server: str, db: Engine) -> None:
    p = parcel(db, "land_use = 'ODT'")
    bank = {"kind": "organisation", "name": "Ngân hàng TMCP Thử Nghiệm",
            "id_number": "0100999999"}
    buyer = {"kind": "married_couple", "name": "Người Mua Thử Và Vợ",
             "id_number": "001099000111", "share": "1/1"}
    assert post(server, dossier("mortgage", [p["ref"]], lender=bank, contract_no="HĐ-1",
                                register=True)).status_code == 201
    asked = httpx.get(f"{server}/restricted/parcels/{p['uid']}/encumbrances",
                      params={"reason": "hồ sơ chuyển nhượng"}, headers=OFFICER)
    assert asked.status_code == 200 and asked.headers["cache-control"] == "no-store"
    assert asked.json()["mortgaged"] and not asked.json()["frozen"]
    (mortgage,) = asked.json()["encumbrances"]
    assert mortgage["holder"] == bank["name"]
    assert httpx.get(f"{server}/restricted/parcels/{p['uid']}/encumbrances").status_code == 401
    assert httpx.get(f"{server}/restricted/parcels/{p['uid']}/encumbrances",
                     headers=token("officer", "003")).status_code == 403

    assert rules(post(server, dossier("transfer", [p["ref"]], to=[buyer]))) == {"mortgaged"}
    consented = post(server, dossier("gift", [p["ref"]], to=[buyer],
                                     lender_consent=[mortgage["encumbrance_id"]]))
    assert consented.status_code == 201, consented.text  # filed: the lender consents
    assert httpx.post(f"{server}/cadastre/dossiers/{consented.json()['dossier_id']}/withdraw",
                      headers=OFFICER).json()["state"] == "withdrawn"
    assert post(server, dossier("mortgage_release", [p["ref"]], register=True,
                                encumbrance_id=mortgage["encumbrance_id"])).status_code == 201
    court = {"authority": "Tòa án nhân dân quận Ba Đình", "document_ref": "QĐ 1/2026/QĐ-BPKCTT"}
    assert post(server, dossier("freeze", [p["ref"]], register=True, **court)).status_code \
        == 201
    frozen = httpx.get(f"{server}/restricted/parcels/{p['uid']}/encumbrances", headers=OFFICER)
    (freeze,) = frozen.json()["encumbrances"]
    assert frozen.json()["frozen"]
    assert rules(post(server, dossier("transfer", [p["ref"]], to=[buyer]))) == {"frozen"}
    assert rules(post(server, dossier("change_of_use", [p["ref"]], land_use="TMD"))) >= \
        {"frozen"}
    assert post(server, dossier("freeze_lift", [p["ref"]], register=True,
                                encumbrance_id=freeze["encumbrance_id"])).status_code == 201
    sold = post(server, dossier("transfer", [p["ref"]], to=[buyer], register=True,
                                certificate={"serial": "DX 990011", "register_no": "CS 1",
                                             "issue_date": "2026-11-30"}))
    assert sold.status_code == 201, sold.text
    rights = httpx.get(f"{server}/restricted/parcels/{p['uid']}/rights", headers=OFFICER).json()
    assert [(r["party"]["name"], r["party"]["kind"], r["certificate"]["serial"])
            for r in rights["rights"]] == [(buyer["name"], "married_couple", "DX 990011")]
    with db.connect() as conn:
        reads = conn.execute(text("SELECT count(*) FROM audit.write_log WHERE action = "
                                  "'read_rights' AND parcel_uid = :u AND reason = "
                                  "'hồ sơ chuyển nhượng'"), {"u": p["uid"]}).scalar()
    assert reads == 1
    # nothing of it in public: no holder, lender or court in any public answer about it
    public = [httpx.get(f"{server}{path}", timeout=30).text for path in (
        f"/collections/parcels-{DISTRICT}/items/{p['uid']}",
        f"/cadastre/parcels/{p['ref'].replace('.', '/')}",
        f"/cadastre/parcels/{p['ref'].replace('.', '/')}/history",
        "/collections/parcel-changes/items?limit=1000")]
    for secret in (buyer["name"], buyer["id_number"], bank["name"], court["authority"],
                   "DX 990011", "mortgage", "freeze"):
        assert not any(secret in body for body in public), secret


# --------------------------------------------------------------------------- concurrency
def test_two_officers_on_one_parcel_one_wins_the_other_409(server: str, db: Engine) -> None:
    p = parcel(db, "land_use = 'ODT' AND area_m2 BETWEEN 400 AND 20000")
    first = post(server, dossier("correction", [p["ref"]], address="A"))
    assert first.status_code == 201
    second = post(server, dossier("correction", [p["ref"]], address="B"))
    assert second.status_code == 409 and "is open on these parcels" in second.text
    # the parcel locked by someone else's transaction: 409 at once, nothing partial
    with psycopg.connect(db.url.set(drivername="postgresql").render_as_string(
            hide_password=False)) as other:
        other.execute("SELECT 1 FROM cadastre.parcel WHERE uid = %s FOR UPDATE", (p["uid"],))
        started = time.monotonic()
        busy = httpx.post(f"{server}/cadastre/dossiers/{first.json()['dossier_id']}/register",
                          headers=OFFICER, timeout=30)
        assert busy.status_code == 409 and time.monotonic() - started < 5
    # both registering at once: one 200, the other 409
    answers: list[int] = []
    url = f"{server}/cadastre/dossiers/{first.json()['dossier_id']}/register"
    threads = [threading.Thread(target=lambda: answers.append(
        httpx.post(url, headers=OFFICER, timeout=30).status_code)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(answers) == [200, 409]
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit.write_log WHERE action = "
                                 "'register' AND parcel_uid = :u"), {"u": p["uid"]}
                            ).scalar() == 1


def test_a_registration_killed_half_way_leaves_nothing(db_url: URL, db: Engine) -> None:
    """The registration is stopped (its backend terminated) after it has written the
    children, lineage and rights, while it waits for the district's summary row."""
    app = make_engine(role_url(db_url, APP), application_name="lis-kill-test")
    service = DossierService(app, extensions(DOMAINS))
    actor = Actor("officer-001", "officer", DISTRICT)
    p = parcel(db, "land_use = 'ODT' AND area_m2 BETWEEN 400 AND 20000")
    status, doc = service.file(actor, dossier("split", [p["ref"]], children=[
        {"geometry": g} for g in halves(p["shape"])]), ("test", None))
    tables = ("cadastre.parcel_lineage", "cadastre.parcel_event", "restricted.land_right",
              "cadastre.parcel_history", "audit.write_log")
    before = {t: scalar(db, f"SELECT count(*) FROM {t}") for t in tables}
    outcome: list[object] = []
    with psycopg.connect(db.url.set(drivername="postgresql").render_as_string(
            hide_password=False), autocommit=True) as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT 1 FROM cadastre.district_summary WHERE district_code = %s "
                       "FOR UPDATE", (DISTRICT,))

        def register() -> None:
            try:
                outcome.append(service.register(actor, doc["dossier_id"], ("test", None)))
            except Exception as exc:  # noqa: BLE001 - what the kill raises
                outcome.append(exc)

        worker = threading.Thread(target=register)
        worker.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            waiting = holder.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'lis-kill-test' "
                "AND wait_event_type = 'Lock'").fetchone()
            if waiting:
                break
            time.sleep(0.1)
        assert waiting, "the registration never reached the summary row"
        holder.execute("SELECT pg_terminate_backend(%s)", (waiting[0],))
        worker.join(30)
        holder.execute("ROLLBACK")
    app.dispose()
    assert outcome and isinstance(outcome[0], Exception)
    assert not isinstance(outcome[0], DossierError)
    with db.connect() as conn:
        state = conn.execute(text("SELECT state FROM cadastre.dossier WHERE dossier_id = :d"),
                             {"d": doc["dossier_id"]}).scalar()
        statuses = conn.execute(text("SELECT status FROM cadastre.parcel WHERE dossier_id = "
                                     ":d OR uid = :u ORDER BY uid"),
                                {"d": doc["dossier_id"], "u": p["uid"]}).scalars().all()
        after = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in before}
    assert state == "filed"
    assert statuses == ["current", "pending", "pending"]
    assert after == before


def test_malformed_dossiers_are_400_and_the_public_is_401(server: str) -> None:
    assert post(server, dossier("split", ["00001.1.1"]), headers={}).status_code == 401
    for body, says in (
            ({"kind": "annex"}, "kind must be one of"),
            (dossier("split", ["00001.1.1"]), "children"),
            (dossier("split", ["1.1"]), "parcels must list"),
            ({**dossier("freeze", ["00001.1.1"]), "received_date": "2999-01-01"}, "future"),
            (dossier("transfer", ["00001.1.1"], to=[{"kind": "alien", "name": "x"}]),
             "to[1].kind"),
            (dossier("split", ["00001.1.1"], children=[{"geometry": {"type": "Point",
                                                                      "coordinates": [1, 2]}}
                                                       ] * 2), "Polygon")):
        r = post(server, body)
        assert r.status_code == 400 and says in r.json()["description"], (body, r.text)
    assert httpx.post(f"{server}/cadastre/dossiers", content=b"{", headers=OFFICER
                      ).status_code == 400
    assert post(server, dossier("correction", ["00001.9999.9999"], address="x")
                ).status_code == 404


def test_an_officer_files_only_in_their_district(server: str, db: Engine) -> None:
    p = parcel(db, "land_use = 'ODT'")
    r = post(server, dossier("correction", [p["ref"]], address="x"),
             headers=token("officer", "003"))
    assert r.status_code == 403
    assert post(server, dossier("correction", [p["ref"]], address="y"),
                headers=token("admin")).status_code == 201


def test_a_commune_officer_files_only_for_their_2025_commune(server: str, db: Engine
                                                             ) -> None:
    """A 2025 commune's officer files, shows and registers a dossier on a parcel whose
    2025 commune is theirs; one of another (or of none known) is 403, naming it."""
    mine = parcel(db, "current_commune_code IS NOT NULL AND land_use = 'ODT'")
    commune = scalar(db, "SELECT current_commune_code FROM cadastre.parcel WHERE uid = :u",
                     {"u": mine["uid"]})
    other = parcel(db, "current_commune_code IS DISTINCT FROM :c", {"c": commune})
    tok = issue_local(TEST_AUTH_SECRET, sub=f"officer-{commune}", role="officer",
                      commune=commune, ttl_s=3600, audience=LOCAL_AUDIENCE)
    officer = {"Authorization": f"Bearer {tok}"}
    refused = post(server, dossier("correction", [other["ref"]], address="x"), officer)
    assert refused.status_code == 403, refused.text
    assert other["ref"] in refused.json()["description"]
    assert refused.json()["reasons"][0]["rule"] == "scope"
    filed = post(server, dossier("correction", [mine["ref"]], address="Số 2 phố Thử"),
                 officer)
    assert filed.status_code == 201, filed.text
    dossier_id = filed.json()["dossier_id"]
    url = f"{server}/cadastre/dossiers/{dossier_id}"
    assert httpx.get(url, headers=officer, timeout=30).status_code == 200
    assert httpx.get(url, headers=token("officer", "003"), timeout=30).status_code == 403
    done = httpx.post(f"{url}/register", headers=officer, timeout=60)
    assert done.status_code == 200 and done.json()["state"] == "registered", done.text
    assert scalar(db, "SELECT DISTINCT actor_district FROM audit.write_log "
                      "WHERE collection = 'dossiers' AND actor_sub = :s",
                  {"s": f"officer-{commune}"}) == commune


def test_the_cli_files_and_registers_as_the_operator(db_url: URL, db: Engine,
                                                     tmp_path: Path) -> None:
    p = parcel(db, "land_use = 'ODT'")
    path = tmp_path / "d.json"
    path.write_text(json.dumps(dossier("correction", [p["ref"]], address="Theo CLI")),
                    encoding="utf-8")
    env = {**os.environ, **role_env(db_url)}
    done = subprocess.run([sys.executable, "-m", "lis.cli", "dossier", "file", str(path),
                           "--register"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] == "registered"
    with db.connect() as conn:
        role = conn.execute(text("SELECT actor_role FROM audit.write_log WHERE action = "
                                 "'register' AND parcel_uid = :u"), {"u": p["uid"]}).scalar()
    assert role == "operator"
