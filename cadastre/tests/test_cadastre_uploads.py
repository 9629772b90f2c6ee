"""File loads through the API (``POST /districts/{d}/loads/parcels``): who may load, what
a load changes and reports, how it is audited, and what an upload may not do.

The files are cut from the sample deliveries with new sheet numbers from 980 up (no other
test counts them; test_auth_writes uses 990 up); whatever they create is retired again when
the module ends, so the per-district counts stay the manifest's for the modules after.
"""

from __future__ import annotations

import io
import socket
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import geopandas as gpd
import httpx
import pyogrio
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from cadastre.merge import refresh_district_summary
from landplatform.auth.tokens import issue_local
from support import SAMPLES, TEST_AUTH_SECRET, data_snapshot, free_ground

SHEETS = 980  # up to 989
FIRST = 3  # the test files are cut from the first features of a sample
NATIONAL = {"SoHieuToBa": "SoHieuToBanDo", "SoThuTuThu": "SoThuTuThua",
            "KyHieuMucD": "KyHieuMucDichSuDung"}
OWNER_FIELDS = ["LoaiChu", "TenChu", "SoCCCD", "SoGCN", "NgayCapGCN"]
TIMEOUT = 120


def bearer(role: str, district: str | None = None) -> dict[str, str]:
    tok = issue_local(TEST_AUTH_SECRET, sub=f"loader-{role}-{district or 'all'}", role=role,
                      district=district)
    return {"Authorization": f"Bearer {tok}"}


OFFICER_001 = bearer("officer", "001")
ADMIN = bearer("admin")


@pytest.fixture(autouse=True)
def retire_what_the_test_loaded(api_db: Engine) -> Iterator[None]:
    """Retire the test sheets' parcels after each test (also a failed one): the tests
    lay their parcels on the same ground, and a parcel over a current one is refused."""
    yield
    with api_db.begin() as conn:
        districts = conn.execute(text("""
            UPDATE cadastre.parcel SET status = 'historic', valid_to = now()
             WHERE sheet_no BETWEEN :lo AND :hi AND status = 'current'
            RETURNING district_code
        """), {"lo": SHEETS, "hi": SHEETS + 9}).scalars().all()
        if districts:
            refresh_district_summary(conn, sorted(set(districts)))


@pytest.fixture(scope="module", autouse=True)
def free_sample_ground(api_db: Engine) -> Iterator[None]:
    """The parcels the test files are cut from, taken out for the module: a file laying
    new parcels over current ones is refused (the overlap rule), and these files are
    about who may load what, not about overlaps."""
    keys = [(str(r["MaXa"]), int(r["SoHieuToBa"]), int(r["SoThuTuThu"]))
            for name in ("parcels_001_ba_dinh.shp", "parcels_492_hai_chau.shp")
            for r in pyogrio.read_dataframe(SAMPLES / name, max_features=FIRST,
                                            read_geometry=False).to_dict("records")]
    with free_ground(api_db, "(commune_code, sheet_no, parcel_no) IN (SELECT * FROM "
                             "unnest(CAST(:c AS text[]), CAST(:s AS int[]), "
                             "CAST(:p AS int[])))",
                     {"c": [k[0] for k in keys], "s": [k[1] for k in keys],
                      "p": [k[2] for k in keys]}):
        yield


def sample(name: str, n: int, sheet: int) -> gpd.GeoDataFrame:
    """The first ``n`` features of a sample delivery, on ``sheet``, owners left out (the
    samples' lots are mapped at 1:500, as their sidecars say: ``TyLe`` says it here)."""
    assert n <= FIRST
    frame = pyogrio.read_dataframe(SAMPLES / name, max_features=n)
    frame = frame.drop(columns=[c for c in OWNER_FIELDS if c in frame.columns])
    frame["SoHieuToBa"] = sheet
    frame["TyLe"] = 500
    return frame


def national(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return frame.rename(columns=NATIONAL)


def gpkg(frame: gpd.GeoDataFrame, path: Path) -> Path:
    national(frame).to_file(path, driver="GPKG", layer="thua_dat")
    return path


def geojson(frame: gpd.GeoDataFrame, path: Path) -> Path:
    national(frame).to_crs(4326).to_file(path, driver="GeoJSON")
    return path


def upload(api: str, district: str, path: Path, headers: dict | None = None,
           params: dict | None = None, name: str | None = None) -> httpx.Response:
    with path.open("rb") as fh:
        return httpx.post(f"{api}/districts/{district}/loads/parcels", params=params,
                          files={"file": (name or path.name, fh)}, headers=headers or {},
                          timeout=TIMEOUT)


def parcels_on(api: str, district: str, sheet: int) -> dict[int, dict]:
    r = httpx.get(f"{api}/collections/parcels-{district}/items",
                  params={"f": "json", "sheet_no": sheet, "limit": 100})
    assert r.status_code == 200, r.text
    return {f["properties"]["parcel_no"]: f["properties"] for f in r.json()["features"]
            if f["properties"]["sheet_no"] == sheet}


def count(api_db: Engine, district: str) -> int:
    with api_db.connect() as conn:
        return conn.execute(text("SELECT parcel_count FROM publish.districts "
                                 "WHERE district_code = :d"), {"d": district}).scalar_one()


def test_who_may_load(api: str, api_db: Engine, tmp_path: Path) -> None:
    """No token or a bad one 401, another district 403, an unknown one 404; nothing
    changes and the body is not even read."""
    path = gpkg(sample("parcels_001_ba_dinh.shp", 2, SHEETS + 9), tmp_path / "a.gpkg")
    snapshot = data_snapshot(api_db)
    r = upload(api, "001", path)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = upload(api, "001", path, {"Authorization": "Bearer not.a.jwt"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    forged = issue_local("another-secret-" + "y" * 32, sub="mallory", role="admin")
    assert upload(api, "001", path, {"Authorization": f"Bearer {forged}"}).status_code == 401
    assert upload(api, "492", path, OFFICER_001).status_code == 403
    assert upload(api, "999", path, ADMIN).status_code == 404
    assert upload(api, "x1", path, ADMIN).status_code == 404
    assert data_snapshot(api_db) == snapshot


def test_officer_loads_their_district(api: str, api_db: Engine, tmp_path: Path) -> None:
    frame = sample("parcels_001_ba_dinh.shp", 3, SHEETS)
    before = count(api_db, "001")

    r = upload(api, "001", gpkg(frame, tmp_path / "thua_dat_001.gpkg"), OFFICER_001)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "loaded" and body["file"] == "thua_dat_001.gpkg"
    assert body["counts"] == {"read": 3, "inserted": 3, "updated": 0, "unchanged": 0,
                              "rejected": 0, "repaired": body["counts"]["repaired"]}
    assert body["rejects"] == [] and body["rejects_total"] == 0
    run_id = body["run_id"]
    assert count(api_db, "001") == before + 3
    published = parcels_on(api, "001", SHEETS)
    assert sorted(published) == sorted(int(n) for n in frame["SoThuTuThu"])
    first = int(frame["SoThuTuThu"].iloc[0])
    assert published[first]["commune_code"] == frame["MaXa"].iloc[0]

    # Attributed to the token's subject and role, by the run and by the audit log.
    with api_db.connect() as conn:
        run = conn.execute(text("SELECT kind, run_by, status, inserted, districts "
                                "FROM etl.load_run WHERE run_id = :r"), {"r": run_id}).one()
        file_name = conn.execute(text("SELECT file_name FROM etl.load_run WHERE run_id = :r"),
                                 {"r": run_id}).scalar_one()
        audit = conn.execute(text("SELECT * FROM audit.write_log WHERE load_run_id = :r"),
                             {"r": run_id}).mappings().all()
    assert tuple(run) == ("parcels", "loader-officer-001", "loaded", 3, ["001"])
    assert file_name == "upload:thua_dat_001.gpkg"  # the client's name, not a server path
    assert audit[0]["request_id"] == r.headers["x-request-id"]  # the server's own id
    assert len(audit) == 1
    assert (audit[0]["action"], audit[0]["actor_sub"], audit[0]["actor_role"],
            audit[0]["actor_district"], audit[0]["district_code"]) == (
        "load", "loader-officer-001", "officer", "001", "001")
    assert audit[0]["request_id"] and audit[0]["after"]["mode"] == "strict"

    # The same file again: nothing changes.
    snapshot = data_snapshot(api_db)
    r = upload(api, "001", gpkg(frame, tmp_path / "again.gpkg"), OFFICER_001)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "unchanged" and r.json()["counts"]["unchanged"] == 3
    assert data_snapshot(api_db) == snapshot

    # The same parcels as a zipped Shapefile (the form a land office sends): unchanged too.
    frame.to_file(tmp_path / "thua_dat.shp", encoding="UTF-8")
    archive = tmp_path / "thua_dat.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            zf.write(tmp_path / f"thua_dat{ext}", f"giao_nop/thua_dat{ext}")
    r = upload(api, "001", archive, OFFICER_001)
    assert r.status_code == 200 and r.json()["counts"]["unchanged"] == 3, r.text

    # A changed parcel (options as form fields): one update, visible in the collection.
    changed = frame.copy()
    new_use = "TMD" if changed.at[1, "KyHieuMucD"] != "TMD" else "ODT"
    changed.at[1, "KyHieuMucD"] = new_use
    path = gpkg(changed, tmp_path / "changed.gpkg")
    with path.open("rb") as fh:
        r = httpx.post(f"{api}/districts/001/loads/parcels", headers=OFFICER_001,
                       files={"file": (path.name, fh)}, data={"quarantine": "true"},
                       timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    assert r.json()["mode"] == "quarantine"
    assert (r.json()["counts"]["updated"], r.json()["counts"]["unchanged"]) == (1, 2)
    assert parcels_on(api, "001", SHEETS)[int(changed.at[1, "SoThuTuThu"])]["land_use"] \
        == new_use
    assert count(api_db, "001") == before + 3


def test_a_file_of_another_district_is_refused(api: str, api_db: Engine,
                                               tmp_path: Path) -> None:
    """Features of 492 sent to /districts/001: refused whole, each located (strict); left
    out (quarantine); an administrator is held to the path's district too."""
    other = gpkg(sample("parcels_492_hai_chau.shp", 2, SHEETS + 1), tmp_path / "hc.gpkg")
    snapshot = data_snapshot(api_db)
    for headers in (OFFICER_001, ADMIN):
        r = upload(api, "001", other, headers)
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["status"] == "rejected" and body["counts"]["rejected"] == 2
        assert [(i["feature"], i["field"]) for i in body["rejects"]] == [
            (1, "commune_code"), (2, "commune_code")]
        assert "commune 20227 lies in district 492, not 001" in body["rejects"][0]["reason"]
    assert data_snapshot(api_db) == snapshot

    mixed = gpd.GeoDataFrame(
        [*sample("parcels_001_ba_dinh.shp", 1, SHEETS + 2).to_crs(4326).to_dict("records"),
         *sample("parcels_492_hai_chau.shp", 1, SHEETS + 2).to_crs(4326).to_dict("records")],
        geometry="geometry", crs=4326)
    r = upload(api, "001", geojson(mixed, tmp_path / "mixed.geojson"), OFFICER_001,
               params={"quarantine": "1"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["counts"]["inserted"], body["counts"]["rejected"]) == (1, 1)
    assert body["rejects"][0]["feature"] == 2 and "district 492" in body["rejects"][0]["reason"]
    with api_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cadastre.parcel WHERE sheet_no = :s "
                                 "AND district_code = '492'"), {"s": SHEETS + 2}).scalar() == 0


def commune_bearer(commune: str) -> dict[str, str]:
    tok = issue_local(TEST_AUTH_SECRET, sub=f"loader-commune-{commune}", role="officer",
                      commune=commune)
    return {"Authorization": f"Bearer {tok}"}


def test_a_commune_officer_loads_only_their_2025_commune(api: str, api_db: Engine,
                                                        tmp_path: Path) -> None:
    """An officer of a 2025 commune loads a file of a district the commune reaches into:
    a parcel of another 2025 commune in it refuses the file, named (quarantine: left
    out); a district the commune has no part of is 403 before the body is read."""
    first = pyogrio.read_dataframe(SAMPLES / "parcels_001_ba_dinh.shp", max_features=1,
                                   read_geometry=False).iloc[0]
    with api_db.connect() as conn:
        mine = conn.execute(text(
            "SELECT current_commune_code FROM cadastre.parcel WHERE commune_code = :c "
            "AND sheet_no = :s AND parcel_no = :p"), {
                "c": str(first["MaXa"]), "s": int(first["SoHieuToBa"]),
                "p": int(first["SoThuTuThu"])}).scalar_one()
        theirs = gpd.read_postgis(text("""
            SELECT commune_code AS "MaXa", sheet_no AS "SoHieuToBa",
                   parcel_no AS "SoThuTuThu", area_m2::float8 AS "DienTich",
                   land_use AS "KyHieuMucD", 2000 AS "TyLe", geom AS geometry
              FROM cadastre.parcel
             WHERE district_code = '001' AND status = 'current' AND sheet_no < :lo
               AND current_commune_code <> :c
             ORDER BY uid LIMIT 1"""), conn, params={"lo": SHEETS, "c": mine},
            geom_col="geometry")
        far = conn.execute(text("""
            SELECT min(m.new_code) FROM admin.admin_unit_map m
              JOIN admin.admin_unit c ON c.code = m.old_code AND c.level = 'commune'
               AND c.valid_to = DATE '2025-06-30'
             WHERE c.parent_code = '492' AND m.new_code NOT IN (
                   SELECT x.new_code FROM admin.admin_unit_map x
                     JOIN admin.admin_unit o ON o.code = x.old_code AND o.level = 'commune'
                      AND o.valid_to = DATE '2025-06-30'
                    WHERE o.parent_code = '001')""")).scalar_one()
    assert mine and len(theirs) == 1 and far
    their_ref = ".".join(str(theirs.at[0, k]) for k in ("MaXa", "SoHieuToBa", "SoThuTuThu"))
    ours = sample("parcels_001_ba_dinh.shp", 1, SHEETS + 4).to_crs(4326)
    mixed = gpd.GeoDataFrame([*ours.to_dict("records"), *theirs.to_dict("records")],
                             geometry="geometry", crs=4326)
    officer = commune_bearer(mine)
    snapshot = data_snapshot(api_db)
    r = upload(api, "001", geojson(mixed, tmp_path / "commune.geojson"), officer)
    assert r.status_code == 422, r.text
    rejects = r.json()["rejects"]
    assert [(i["feature"], i["field"]) for i in rejects] == [(2, "commune_code")], rejects
    assert their_ref in rejects[0]["reason"] and f"commune {mine} only" in \
        rejects[0]["reason"]
    assert data_snapshot(api_db) == snapshot

    r = upload(api, "001", geojson(mixed, tmp_path / "commune_q.geojson"), officer,
               params={"quarantine": "1"})
    assert r.status_code == 201, r.text
    assert (r.json()["counts"]["inserted"], r.json()["counts"]["rejected"]) == (1, 1)
    assert parcels_on(api, "001", SHEETS + 4)[int(first["SoThuTuThu"])][
        "current_commune_code"] == mine
    with api_db.connect() as conn:
        actor = conn.execute(text("SELECT actor_district FROM audit.write_log "
                                  "WHERE load_run_id = :r"), {"r": r.json()["run_id"]}
                             ).scalar_one()
    assert actor == mine  # the audit names the commune the officer is scoped by

    r = upload(api, "001", tmp_path / "commune.geojson", commune_bearer(far))
    assert r.status_code == 403 and f"no part of commune {far}" in r.text


def test_bad_files_are_422_with_located_reasons(api: str, api_db: Engine,
                                                tmp_path: Path) -> None:
    frame = sample("parcels_001_ba_dinh.shp", 3, SHEETS + 3)
    frame.at[0, "KyHieuMucD"] = "XYZ"
    frame.at[2, "DienTich"] = frame.at[2, "DienTich"] * 3
    snapshot = data_snapshot(api_db)
    r = upload(api, "001", geojson(frame, tmp_path / "bad.geojson"), OFFICER_001)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["status"] == "rejected" and body["counts"]["inserted"] == 0
    located = {(i["feature"], i["field"]) for i in body["rejects"]}
    assert {(1, "land_use"), (3, "area_m2")} <= located, body["rejects"]
    assert body["rejects_total"] == len(body["rejects"])

    garbage = tmp_path / "garbage.geojson"
    garbage.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    r = upload(api, "001", garbage, OFFICER_001)
    assert r.status_code == 422 and r.json()["status"] == "failed", r.text
    assert r.json()["message"]
    assert data_snapshot(api_db) == snapshot


def zipped(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_unsafe_or_unusable_uploads_are_400(api: str, api_db: Engine) -> None:
    url = f"{api}/districts/001/loads/parcels"
    snapshot = data_snapshot(api_db)
    shapefile = {"x.shp": b"\0" * 100, "x.shx": b"\0" * 100, "x.dbf": b"\0" * 100}
    cases = [
        ("traversal.zip", zipped({**shapefile, "../x.shp": b"\0"}), "unsafe path"),
        ("absolute.zip", zipped({"/etc/x.shp": b"\0"}), "unsafe path"),
        ("many.zip", zipped({f"f{i}.dbf": b"" for i in range(40)}), "members"),
        ("other.zip", zipped({**shapefile, "run.sh": b"#!/bin/sh"}), "not part of"),
        ("two.zip", zipped({**shapefile, "y.shp": b"\0"}), "more than one"),
        ("incomplete.zip", zipped({"x.shp": b"\0"}), "missing"),
        ("notazip.zip", b"PK but not really", "not a readable"),
        # 8 MiB of zeros in a few kB: refused before anything is unpacked
        ("bomb.zip", zipped({"x.shp": b"\0" * 100, "x.shx": b"\0" * 100,
                             "x.dbf": b"\0" * (8 << 20)}, zipfile.ZIP_DEFLATED), "zip bomb"),
        ("thua_dat.exe", b"MZ", "not a delivery"),
    ]
    for name, data, reason in cases:
        r = httpx.post(url, files={"file": (name, data)}, headers=OFFICER_001,
                       timeout=TIMEOUT)
        assert r.status_code == 400, (name, r.text)
        assert reason in r.json()["description"], (name, r.text)
    r = httpx.post(url, files={"crs": (None, "EPSG:4326")}, headers=OFFICER_001)
    assert r.status_code == 400 and "no file" in r.json()["description"]
    r = httpx.post(url, content=b"{}", headers={**OFFICER_001,
                                                "Content-Type": "application/json"})
    assert r.status_code == 415
    r = httpx.post(url, files={"file": ("a.gpkg", b"x")}, params={"quarantine": "maybe"},
                   headers=OFFICER_001)
    assert r.status_code == 400 and "quarantine" in r.json()["description"]
    r = httpx.post(url, files={"file": ("a.gpkg", b"x")}, params={"owner": "1"},
                   headers=OFFICER_001)
    assert r.status_code == 400 and "unknown options" in r.json()["description"]
    assert data_snapshot(api_db) == snapshot


def test_upload_cap_is_its_own(api: str) -> None:
    """Uploads may exceed the general body cap (20 MB) but not LIS_MAX_UPLOAD_BYTES; the
    cap is checked on the declared length before a byte of the body is read."""
    big = b"{" + b" " * (21 * 1024 * 1024) + b"}"
    r = httpx.post(f"{api}/districts/001/loads/parcels", headers=OFFICER_001,
                   files={"file": ("big.geojson", big)}, timeout=TIMEOUT)
    assert r.status_code == 422, r.text[:300]  # read (not 413), then found unreadable
    parts = urlsplit(api)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(b"POST /districts/001/loads/parcels HTTP/1.1\r\nHost: x\r\n"
                     + f"Authorization: {OFFICER_001['Authorization']}\r\n".encode()
                     + b"Content-Type: multipart/form-data; boundary=b\r\n"
                     + f"Content-Length: {300 * 1024 * 1024}\r\n\r\n".encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 413")
    r = httpx.post(f"{api}/collections/parcels-001/items", content=b" " * (21 * 1024 * 1024),
                   headers={**OFFICER_001, "Content-Type": "application/geo+json"})
    assert r.status_code == 413


def test_uploads_leave_nothing_behind(api: str, api_var_dir: Path) -> None:
    """Every upload above was streamed to a temporary directory and deleted afterwards."""
    uploads = api_var_dir / "uploads"
    assert uploads.is_dir() and list(uploads.iterdir()) == []


def test_concurrent_uploads_beyond_the_cap_are_503(api_db: Engine, tmp_path: Path) -> None:
    """With the one allowed load running, another is told to come back: 503 and
    Retry-After, before its body is read."""
    import asyncio

    from cadastre.uploads import LoadRequestError, LoadService
    from landplatform.settings import Settings

    service = LoadService(api_db, Settings(LIS_VAR_DIR=str(tmp_path),
                                           LIS_MAX_CONCURRENT_UPLOADS=1))
    assert service._slots.acquire(blocking=False)  # the running load
    with pytest.raises(LoadRequestError) as refused:
        asyncio.run(service.load(None, None, "001", "rid"))
    assert refused.value.status == 503
    assert refused.value.response("rid").headers["retry-after"] == "30"
    service._slots.release()
