"""The 2025 administrative units, first class: every parcel's 2025 commune (by its point on
surface inside a loaded 2025 boundary, else the crosswalk where the old commune went
wholly into one), how it was decided, the per-province collections, filters and look-ups
by the new units, the map sheet crosswalk (loaded as data, either number finds the
parcel), and officers scoped by a 2025 commune.

A module database takes the order "parcels first, then the 2025 boundaries"; the session's
API database (``lis load samples``) the other order, boundaries first.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine

from boundaries.loader import load_boundaries
from boundaries.rules import Options as BoundaryOptions
from cadastre.loader import load_parcels
from cadastre.sheet_crosswalk import SAMPLE_FILE, load_sheet_crosswalk
from landplatform.auth.tokens import issue_local
from landplatform.db import make_engine
from support import PROJECT, SAMPLES, TEST_AUTH_SECRET, create_database, free_ground

REFERENCE = PROJECT / "landplatform" / "reference"
BOUNDARIES = SAMPLES / "boundaries"
PRE2025 = (BOUNDARIES / "dia_gioi_xa_ha_noi.shp", BOUNDARIES / "dia_gioi_xa_da_nang.gpkg")
B2025 = BOUNDARIES / "dia_gioi_xa_2025.gpkg"
TEST_SHEET = 995  # test parcels (retired again); no other test counts sheets from 990


def crosswalk() -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    with (REFERENCE / "admin_units_2025_crosswalk.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            out.setdefault(r["old_commune_code"], []).append((r["new_commune_code"],
                                                              r["overlap"]))
    return out


def whole(xwalk: dict, old: str) -> str | None:
    """The new commune an old one went wholly into, else None (it was split)."""
    rows = xwalk[old]
    return rows[0][0] if len(rows) == 1 and rows[0][1] == "full" else None


def placements(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("""
            SELECT district_code, commune_code, current_province_code, current_commune_code,
                   current_commune_source,
                   -- independently of the step: which 2025 boundary covers the point
                   (SELECT min(u.code) FROM admin.admin_unit u
                     WHERE u.level = 'commune' AND u.valid_from = DATE '2025-07-01'
                       AND NOT u.geom_is_extent AND u.geom IS NOT NULL
                       AND ST_Covers(u.geom, ST_PointOnSurface(p.geom))) AS covering
              FROM cadastre.parcel p WHERE status = 'current'
             ORDER BY district_code, uid"""))]


@pytest.fixture(scope="module")
def db_url(server_url: URL) -> URL:
    return create_database(server_url, "lis_units2025")


@pytest.fixture(scope="module")
def db(db_url: URL, manifest: list[dict]) -> Iterator[Engine]:
    """Pre-2025 boundaries and the sample parcels; no 2025 boundary yet."""
    engine = make_engine(db_url)
    for path in PRE2025:
        assert load_boundaries(engine, path).status == "loaded"
    for entry in manifest:
        result = load_parcels(engine, SAMPLES / entry["file"])
        assert result.status == "loaded", result.detail_lines()
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def before_2025(db: Engine) -> list[tuple]:
    return placements(db)


@pytest.fixture(scope="module")
def after_2025(db: Engine, before_2025: list[tuple]) -> dict:
    result = load_boundaries(db, B2025, options=BoundaryOptions(period="2025"))
    return {"result": result, "rows": placements(db)}


def test_without_2025_boundaries_the_crosswalk_decides_where_it_can(
        before_2025: list[tuple], manifest: list[dict]) -> None:
    xwalk = crosswalk()
    assert len(before_2025) == sum(e["feature_count"] for e in manifest)
    for _, old, province, new, source, covering in before_2025:
        assert covering is None  # no 2025 boundary is loaded
        expected = whole(xwalk, old)
        assert (new, source) == ((expected, "crosswalk") if expected else (None, "none"))
        assert province is not None  # every sample commune's province is known
    split = {(d, old) for d, old, _, _, source, _ in before_2025 if source == "none"}
    # the wards the reform split (the issue's 7 of 13 in Ba Đình, 7 of 8 in Tây Hồ; the
    # samples hold a few of them) and no other have no 2025 commune without a boundary
    wards = {(e["district_code"], c) for e in manifest for c in e["communes"]}
    assert split == {(d, o) for d, o in wards if whole(xwalk, o) is None}
    assert {d for d, _ in split} == {"001", "003"}  # Đà Nẵng's went wholly into one


def test_a_2025_boundary_load_places_every_parcel_by_its_point(
        after_2025: dict, before_2025: list[tuple]) -> None:
    result = after_2025["result"]
    assert result.status == "loaded" and result.period == "2025", result.detail_lines()
    assert any("2025 commune changed" in n.reason for n in result.notes)
    xwalk = crosswalk()
    rows = after_2025["rows"]
    assert len(rows) == len(before_2025)
    for _, old, province, new, source, covering in rows:
        assert source == "boundary" and new == covering
        assert new in {n for n, _ in xwalk[old]}  # one of the communes it went into
        assert whole(xwalk, old) in (None, new)  # the crosswalk agrees where it is whole
        assert province == ("01" if old < "10000" else "48")
    # split wards really are split: their parcels went to every new commune they went into
    # (Điện Biên, 00019, to four)
    by_old: dict[str, set[str]] = {}
    for _, old, _, new, _, _ in rows:
        by_old.setdefault(old, set()).add(new)
    assert by_old == {old: {n for n, _ in xwalk[old]} for old in by_old}
    assert max(len(v) for v in by_old.values()) == 4


def test_reloads_change_nothing(db: Engine, after_2025: dict, manifest: list[dict]) -> None:
    again = load_boundaries(db, B2025, options=BoundaryOptions(period="2025"))
    assert (again.status, again.inserted, again.updated) == ("loaded", 0, 0)
    parcels = load_parcels(db, SAMPLES / manifest[0]["file"])
    assert (parcels.status, parcels.inserted, parcels.updated) == ("loaded", 0, 0)
    assert placements(db) == after_2025["rows"]
    with db.connect() as conn:
        versions = conn.execute(text("SELECT count(*) FROM cadastre.parcel_history")).scalar()
    assert versions == 0  # a 2025 commune derived is not a new version of the parcel


def test_province_summary_counts_every_placed_parcel(db: Engine, after_2025: dict) -> None:
    with db.connect() as conn:
        provinces = dict(conn.execute(text(
            "SELECT province_code, parcel_count FROM publish.current_provinces")).all())
        exact = dict(conn.execute(text(
            "SELECT current_province_code, count(*) FROM cadastre.parcel "
            "WHERE status = 'current' GROUP BY 1")).all())
    assert provinces == exact and set(provinces) == {"01", "48"}


def crosswalk_file(tmp_path: Path, rows: list[str], name: str = "xwalk.csv") -> Path:
    path = tmp_path / name
    path.write_text("MaXaCu,SoToCu,MaXaMoi,SoToMoi\n" + "\n".join(rows) + "\n",
                    encoding="utf-8")
    return path


def test_sheet_crosswalk_loads_once_and_refuses_bad_rows(db: Engine, tmp_path: Path) -> None:
    sample = SAMPLES / SAMPLE_FILE
    lines = len(sample.read_text(encoding="utf-8").splitlines()) - 1
    first = load_sheet_crosswalk(db, sample)
    assert (first.status, first.inserted, first.rejected) == ("loaded", lines, 0)
    again = load_sheet_crosswalk(db, sample)
    assert (again.status, again.inserted, again.updated, again.unchanged) == \
        ("loaded", 0, 0, lines)

    def table() -> list[tuple]:
        with db.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT old_commune_code, old_sheet_no, new_commune_code, new_sheet_no "
                "FROM cadastre.sheet_crosswalk ORDER BY 1, 2"))]
    before = table()
    # a new sheet number of 00004 the sample gives another ward's sheet (Quán Thánh's)
    with sample.open(encoding="utf-8") as f:
        held = next(r for r in csv.DictReader(f) if r["new_commune_code"] == "00004"
                    and r["old_commune_code"] != "00004")
    taken_no = held["new_sheet_no"]
    bad = crosswalk_file(tmp_path, [
        "00022,1,00004,40",   # fine on its own: nothing of a refused file is loaded
        "99999,1,00004,41",   # no such old commune
        "00022,2,00097,42",   # Đội Cấn did not go into Hồng Hà
        "00022,x,00004,43",   # not a sheet number
        "00022,3,00004,44", "00022,3,00008,45",  # the same old sheet twice
        f"00022,4,00004,{taken_no}",  # that new sheet of 00004 is held already
    ])
    refused = load_sheet_crosswalk(db, bad)
    assert refused.status == "rejected"
    assert {(i.feature_no, i.field) for i in refused.rejects} >= {
        (3, "old_commune_code"), (4, "new_commune_code"), (5, "old_sheet_no"),
        (6, "old_sheet_no"), (7, "old_sheet_no")}
    assert table() == before
    # the taken new number is found by the database once the rest is clean
    taken = load_sheet_crosswalk(db, crosswalk_file(tmp_path, [f"00022,4,00004,{taken_no}"],
                                                    "taken.csv"))
    assert taken.status == "rejected" and \
        f"already old sheet {held['old_commune_code']}.{held['old_sheet_no']}" in \
        taken.rejects[0].reason
    assert table() == before
    # quarantine: the clean rows load, the refused ones are listed (with the database's)
    kept = load_sheet_crosswalk(db, bad, quarantine=True)
    assert kept.status == "loaded", kept.detail_lines()
    assert (kept.inserted, kept.rejected) == (1, 6), kept.detail_lines()
    assert set(table()) - set(before) == {("00022", 1, "00004", 40)}


def test_lis_load_sheet_crosswalk(db_url: URL, db: Engine, tmp_path: Path) -> None:
    """The command: a refused file exits 1 naming its line; the sample again changes
    nothing (exit 0)."""
    env = {**os.environ, "DATABASE_URL": db_url.render_as_string(hide_password=False)}

    def lis(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "lis.cli", "load", "sheet-crosswalk",
                               str(path)], env=env, capture_output=True, text=True,
                              timeout=120)

    bad = lis(crosswalk_file(tmp_path, ["00022,1,00097,40"]))
    assert bad.returncode == 1
    assert "xwalk.csv feature 2 field new_commune_code: commune 00022 did not go into " \
        "commune 00097" in bad.stderr
    assert lis(SAMPLES / SAMPLE_FILE).returncode == 0
    again = lis(SAMPLES / SAMPLE_FILE)
    assert again.returncode == 0, again.stderr
    assert "0 inserted, 0 updated" in again.stdout


# -- through the API: the session's database was loaded boundaries first (lis load samples)

def bearer(**claims: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_local(TEST_AUTH_SECRET, sub="t", **claims)}


def test_parcel_loads_after_2025_boundaries_place_every_parcel(api_db: Engine) -> None:
    rows = placements(api_db)
    assert rows and all(source == "boundary" and new == covering
                        for *_, new, source, covering in rows)


def test_collections_per_2025_province(api: str, manifest: list[dict]) -> None:
    ids = {c["id"] for c in httpx.get(f"{api}/collections", params={"f": "json"},
                                      timeout=60).json()["collections"]}
    assert {"parcels-p01", "parcels-p48"} <= ids
    for province in ("01", "48"):
        hits = httpx.get(f"{api}/collections/parcels-p{province}/items",
                         params={"f": "json", "resulttype": "hits"}, timeout=60).json()
        assert hits["numberMatched"] == sum(e["feature_count"] for e in manifest
                                            if e["province_code"] == province)
    queryables = httpx.get(f"{api}/collections/parcels-p01/queryables",
                           params={"f": "json"}, timeout=60).json()["properties"]
    assert {"current_province_code", "current_commune_code",
            "current_commune_source"} <= set(queryables)


def test_filter_by_2025_commune(api: str, api_db: Engine) -> None:
    # the sample's smallest 2025 commune (a share of a split ward): one page holds it
    with api_db.connect() as conn:
        commune, expected = conn.execute(text(
            "SELECT current_commune_code, count(*) FROM cadastre.parcel "
            "WHERE status = 'current' GROUP BY 1 ORDER BY 2, 1 LIMIT 1")).one()
    body = httpx.get(f"{api}/collections/parcels/items", timeout=120, params={
        "f": "json", "current_commune_code": commune, "limit": 10000}).json()
    assert 0 < expected <= 10000 and body["numberReturned"] == expected
    assert {f["properties"]["current_commune_code"] for f in body["features"]} == {commune}
    hits = httpx.get(f"{api}/collections/parcels/items", timeout=120, params={
        "f": "json", "current_commune_code": "00004", "resulttype": "hits"}).json()
    with api_db.connect() as conn:
        assert hits["numberMatched"] == conn.execute(text(
            "SELECT count(*) FROM cadastre.parcel WHERE status = 'current' "
            "AND current_commune_code = '00004'")).scalar_one() > 0
    cql = httpx.get(f"{api}/collections/parcels-p01/items", timeout=60, params={
        "f": "json", "filter": "current_commune_code = '00004' AND district_code = '003'",
        "resulttype": "hits"}).json()
    assert cql["numberMatched"] > 0  # new Phường Ba Đình took part of Tây Hồ's Thụy Khuê


Sheet = tuple[str, int, str, int]  # old commune, old sheet, new commune, new sheet


def number_cases(api_db: Engine) -> tuple[Sheet, Sheet, Sheet]:
    """From the sample crosswalk and the loaded sheets: a sheet renumbered into another
    code whose new number no loaded sheet holds, one renumbered to itself, and a new number
    that is also another ward's old sheet (two parcels answer its parcel 1)."""
    with (SAMPLES / SAMPLE_FILE).open(encoding="utf-8") as f:
        rows = [(r["old_commune_code"], int(r["old_sheet_no"]), r["new_commune_code"],
                 int(r["new_sheet_no"])) for r in csv.DictReader(f)]
    with api_db.connect() as conn:
        sheets = {tuple(r) for r in conn.execute(text(
            "SELECT DISTINCT commune_code, sheet_no FROM cadastre.parcel "
            "WHERE status = 'current' AND sheet_no < 990"))}
    moved = next(r for r in rows if r[0] != r[2] and (r[2], r[3]) not in sheets)
    same_no = next(r for r in rows if r[0] == r[2] and r[1] == r[3])
    two = next(r for r in rows if (r[2], r[3]) in sheets and (r[2], r[3]) != (r[0], r[1]))
    return moved, same_no, two


def test_lookup_by_either_number(api: str, api_db: Engine) -> None:
    """A sheet renumbered into another code, one renumbered to itself, and a number that
    is one ward's old sheet and another ward's new one (300, both)."""
    base = f"{api}/cadastre/parcels"
    moved, same_no, two = number_cases(api_db)
    old = httpx.get(f"{base}/{moved[0]}/{moved[1]}/1", timeout=30)
    assert old.status_code == 200, old.text
    assert old.json()["matched_by"] == "number"
    assert old.json()["new_number"] == {"commune_code": moved[2], "sheet_no": moved[3],
                                        "parcel_no": 1}
    new = httpx.get(f"{base}/{moved[2]}/{moved[3]}/1", timeout=30)
    assert new.status_code == 200, new.text
    assert new.json()["id"] == old.json()["id"] and new.json()["matched_by"] == "new_sheet"
    # an old code that is its new commune's too, its sheet renumbered to itself
    same = httpx.get(f"{base}/{same_no[0]}/{same_no[1]}/1", timeout=30)
    assert same.status_code == 200
    assert same.json()["properties"]["parcel_ref"] == f"{same_no[0]}.{same_no[1]}.1"
    # one ward's old sheet and another ward's new number: both candidates
    both = httpx.get(f"{base}/{two[2]}/{two[3]}/1", timeout=30)
    assert both.status_code == 300, both.text
    assert {(c["parcel_ref"], c["matched_by"]) for c in both.json()["candidates"]} == {
        (f"{two[2]}.{two[3]}.1", "number"), (f"{two[0]}.{two[1]}.1", "new_sheet")}
    assert httpx.get(f"{base}/00004/99/1", timeout=30).status_code == 404


def test_history_and_lineage_by_either_number(api: str, api_db: Engine) -> None:
    """As the look-up: the 2025 number finds the parcel its old number does; a number
    naming two parcels is 300, each candidate linked by its own number."""
    base = f"{api}/cadastre/parcels"
    moved, _same, two = number_cases(api_db)
    for what in ("history", "lineage"):
        old = httpx.get(f"{base}/{moved[0]}/{moved[1]}/1/{what}", timeout=30)
        assert old.status_code == 200, old.text
        new = httpx.get(f"{base}/{moved[2]}/{moved[3]}/1/{what}", timeout=30)
        assert new.status_code == 200, new.text
        assert new.json()["parcel_id"] == old.json()["parcel_id"]
        assert (old.json()["matched_by"], new.json()["matched_by"]) == ("number",
                                                                        "new_sheet")
        if what == "history":
            assert new.json()["features"] == old.json()["features"]
        both = httpx.get(f"{base}/{two[2]}/{two[3]}/1/{what}", timeout=30)
        assert both.status_code == 300, both.text
        candidates = both.json()["candidates"]
        assert {(c["parcel_ref"], c["matched_by"]) for c in candidates} == {
            (f"{two[2]}.{two[3]}.1", "number"), (f"{two[0]}.{two[1]}.1", "new_sheet")}
        for c in candidates:  # each link names one parcel
            link = urlsplit(c["links"][0]["href"])
            one = httpx.get(f"{api}{link.path}?{link.query}", timeout=30)
            assert one.status_code == 200 and one.json()["parcel_id"] == c["id"], one.text
        by_number = httpx.get(f"{base}/{two[2]}/{two[3]}/1/{what}", params={"by": "number"},
                              timeout=30)
        assert by_number.json()["parcel_ref"] == f"{two[2]}.{two[3]}.1"
        assert httpx.get(f"{base}/{moved[2]}/99/1/{what}", timeout=30).status_code == 404
        assert httpx.get(f"{base}/00008/1/1/{what}", params={"by": "guess"},
                         timeout=30).status_code == 422


def parcel_in(api_db: Engine, commune_2025: str) -> dict:
    with api_db.connect() as conn:
        return dict(conn.execute(text("""
            SELECT uid, commune_code, computed_area_m2, ST_AsGeoJSON(geom, 9) AS geometry
              FROM cadastre.parcel
             WHERE district_code = '001' AND status = 'current'
               AND current_commune_code = :c AND sheet_no < 990
             ORDER BY uid LIMIT 1"""), {"c": commune_2025}).mappings().one())


def body(tpl: dict, parcel_no: int) -> dict:
    return {"type": "Feature", "geometry": json.loads(tpl["geometry"]), "properties": {
        "commune_code": tpl["commune_code"], "sheet_no": TEST_SHEET, "parcel_no": parcel_no,
        "area_m2": float(tpl["computed_area_m2"]), "land_use": "ODT"}}


def test_commune_officer_writes_only_their_2025_commune(api: str, api_db: Engine) -> None:
    mine, other = parcel_in(api_db, "00004"), parcel_in(api_db, "00008")
    officer = bearer(role="officer", commune="00004")
    url = f"{api}/collections/parcels-001/items"
    with free_ground(api_db, "uid = ANY(:u)", {"u": [mine["uid"], other["uid"]]}):
        refused = httpx.post(url, json=body(other, 1), headers=officer, timeout=30)
        assert refused.status_code == 403, refused.text
        assert "commune 00008" in refused.json()["description"]
        r = httpx.post(url, json=body(mine, 2), headers=officer, timeout=30)
        assert r.status_code == 201, r.text
        props = r.json()["properties"]
        assert (props["current_commune_code"], props["current_commune_source"]) == \
            ("00004", "boundary")
        uid = r.json()["id"]
        with api_db.connect() as conn:
            actor = conn.execute(text("SELECT actor_district FROM audit.write_log WHERE "
                                      "parcel_uid = :u"), {"u": uid}).scalar_one()
            kept = conn.execute(text("SELECT count(*) FROM cadastre.parcel WHERE "
                                     "sheet_no = :s AND parcel_no = 1"),
                                {"s": TEST_SHEET}).scalar_one()
        assert actor == "00004" and kept == 0  # the refused write left nothing
        rights = httpx.get(f"{api}/restricted/parcels/{other['uid']}/rights",
                           headers=officer, timeout=30)
        assert rights.status_code == 403
        # the district's officer still writes it (district tokens keep working)
        district = bearer(role="officer", district="001")
        assert httpx.delete(f"{url}/{uid}", headers=district, timeout=30).status_code == 204
    # a file load for a district no part of the commune lies in: refused before reading
    upload = httpx.post(f"{api}/districts/492/loads/parcels", headers=officer, timeout=30,
                        files={"file": ("x.geojson", b"{}")})
    assert upload.status_code == 403 and "no part of commune 00004" in upload.text
