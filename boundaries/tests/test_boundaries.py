"""Boundaries as deliveries, and "inside the district" decided by them.

Loads the sample boundary files (Shapefile in TM-3, GeoPackage in WGS84) into fresh
databases: every rejected feature explained, a re-load changes nothing, a re-delivery
supersedes the previous version, districts derived from their communes. Then the checks
that use them: a parcel load with a parcel outside its district's boundary is refused
with a located issue, an officer's write of a parcel over another district gets 422, and
where only a district's extent is known the answer says so.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import pytest
import shapely
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine

from boundaries.loader import load_boundaries
from boundaries.rules import Options
from cadastre.loader import load_parcels
from landplatform.auth.tokens import issue_local
from landplatform.db import make_engine
from planning.loader import load_plan
from support import PROJECT, SAMPLES, TEST_AUTH_SECRET, create_database, data_snapshot

BOUNDARIES = SAMPLES / "boundaries"
HANOI = BOUNDARIES / "dia_gioi_xa_ha_noi.shp"
DANANG = BOUNDARIES / "dia_gioi_xa_da_nang.gpkg"
DISTRICTS = BOUNDARIES / "dia_gioi_huyen_mau.gpkg"
# Ba Đình's extent (landplatform/reference/district_extents_01_48.csv): the box that
# decided "inside district 001" before boundaries.
BA_DINH_EXTENT = (105.80147, 21.01586, 105.85716, 21.05389)
TEST_SHEET = 990


def boundary_manifest() -> list[dict]:
    return json.loads((BOUNDARIES / "manifest.json").read_text(encoding="utf-8"))


def engine_for(server_url: URL, name: str) -> Iterator[Engine]:
    engine = make_engine(create_database(server_url, name))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def db(server_url: URL) -> Iterator[Engine]:
    """Sample boundaries, then the sample parcels, loaded in this module's database."""
    yield from engine_for(server_url, "lis_boundaries")


@pytest.fixture(scope="module")
def loaded(db: Engine) -> dict[str, object]:
    started = time.perf_counter()
    # the communes, then the sample districts (a sample holds a few of a district's wards,
    # so its district is delivered, not derived)
    first = {p.name: load_boundaries(db, p) for p in (HANOI, DANANG, DISTRICTS)}
    seconds = time.perf_counter() - started
    return {"first": first, "seconds": seconds}


def versions(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("""
            SELECT u.level, u.code, b.version, b.source, b.valid_to IS NULL, b.load_run_id,
                   b.superseded_by_run
              FROM admin.unit_boundary b JOIN admin.admin_unit u ON u.id = b.unit_id
             ORDER BY u.level, u.code, b.version"""))]


def units(engine: Engine, level: str, codes: list[str]) -> dict[str, tuple[bool, str]]:
    with engine.connect() as conn:
        return {r.code: (r.geom_is_extent, r.kind) for r in conn.execute(text("""
            SELECT code, geom_is_extent, GeometryType(geom) AS kind FROM admin.admin_unit
             WHERE level = :l AND code = ANY(:c) AND valid_to = DATE '2025-06-30'"""),
            {"l": level, "c": codes})}


# --- the delivery itself ----------------------------------------------------------------
def test_sample_boundaries_load_and_districts_are_derived(db: Engine, loaded: dict) -> None:
    manifest = {m["file"]: m for m in boundary_manifest() if m["period"] == "pre2025"}
    for name, result in loaded["first"].items():
        assert result.status == "loaded", result.detail_lines()
        assert result.inserted == manifest[name]["feature_count"] and not result.rejects
        assert result.period == "pre2025" and result.derived == 0
        if name != DISTRICTS.name:  # a district waits for every commune before deriving
            assert any("communes have a boundary" in n.reason for n in result.notes)
    districts = units(db, "district", ["001", "003", "491", "492"])
    assert districts == {c: (False, "MULTIPOLYGON") for c in ("001", "003", "491", "492")}
    with db.connect() as conn:
        communes = conn.execute(text("""
            SELECT count(*) FILTER (WHERE NOT c.geom_is_extent AND c.geom IS NOT NULL),
                   count(*) FROM admin.admin_unit c
             WHERE c.level = 'commune' AND c.parent_code IN ('001', '003', '491', '492')
               AND c.valid_to = DATE '2025-06-30'""")).one()
        # the delivered district is the union of its sample communes (the town's outline)
        gap = conn.execute(text("""
            SELECT max(ST_Area(ST_SymDifference(d.geom, x.u)::geography))
              FROM admin.admin_unit d
              JOIN (SELECT parent_code, ST_Union(geom) AS u FROM admin.admin_unit
                     WHERE level = 'commune' AND valid_to = DATE '2025-06-30'
                     GROUP BY parent_code) x ON x.parent_code = d.code
             WHERE d.level = 'district' AND d.code IN ('001', '003', '491', '492')
               AND d.valid_to = DATE '2025-06-30'""")).scalar()
        ledger = conn.execute(text(
            "SELECT kind, status, inserted FROM etl.load_run ORDER BY run_id")).all()
    assert communes[0] == sum(m["feature_count"] for m in manifest.values()
                              if m["level"] == "commune") < communes[1]
    assert gap < 1.0
    assert [tuple(r) for r in ledger] == [("boundaries", "loaded", m["feature_count"])
                                          for m in manifest.values()]
    sources = {(lv, src) for lv, _, _, src, *_ in versions(db)}
    assert sources == {("commune", "delivered"), ("district", "delivered")}


def test_reloading_the_same_file_changes_nothing(db: Engine, loaded: dict) -> None:
    before = versions(db)
    again = load_boundaries(db, HANOI)
    assert again.status == "loaded" and again.run_id is not None
    assert (again.inserted, again.updated, again.derived) == (0, 0, 0)
    assert again.unchanged == again.features_read
    assert versions(db) == before


@pytest.fixture(scope="module")
def parcels(db: Engine, loaded: dict, manifest: list[dict]) -> dict[str, tuple]:
    """The sample parcels loaded after the sample boundaries: (result, seconds) per file."""
    out = {}
    for entry in manifest:
        started = time.perf_counter()
        result = load_parcels(db, SAMPLES / entry["file"])
        out[entry["file"]] = (result, time.perf_counter() - started)
    return out


def test_every_sample_parcel_lies_inside_its_commune(db: Engine, loaded: dict,
                                                     parcels: dict,
                                                     manifest: list[dict]) -> None:
    """The samples agree with each other: the sample parcels load against the sample
    boundaries with no location issue (timed: the check's cost on a sample load)."""
    for entry in manifest:
        result, seconds = parcels[entry["file"]]
        assert result.status == "loaded", result.detail_lines()[:5]
        assert result.inserted == entry["feature_count"]
        assert not [n for n in result.notes if n.feature_no == 0], result.notes
        print(f"{entry['file']}: {result.features_read} parcels loaded against boundaries "
              f"in {seconds:.2f} s (boundaries loaded in {loaded['seconds']:.2f} s)")
    with db.connect() as conn:
        outside = conn.execute(text("""
            SELECT count(*) FROM cadastre.parcel p
              JOIN admin.admin_unit c ON c.level = 'commune' AND c.code = p.commune_code
                                     AND c.valid_to = DATE '2025-06-30'
             WHERE NOT ST_CoveredBy(p.geom, ST_Buffer(c.geom::geography, 0.5)::geometry)
        """)).scalar()
    assert outside == 0


def small_delivery(tmp_path: Path, edit, name: str = "xa.gpkg") -> Path:  # noqa: ANN001
    """The Đà Nẵng sample boundaries (WGS84) in a new GeoPackage, edited."""
    frame = gpd.read_file(DANANG)
    edit(frame)
    path = tmp_path / name
    frame.to_file(path, driver="GPKG")
    return path


def _bad(frame: gpd.GeoDataFrame) -> None:
    frame.loc[1, "Mã xã"] = "99999"  # no such commune
    frame.loc[2, "Mã huyện"] = "491" if frame.loc[2, "Mã huyện"] != "491" else "492"
    frame.loc[4, "Mã xã"] = frame.loc[3, "Mã xã"]  # delivered twice
    frame.loc[5, "geometry"] = shapely.affinity.translate(frame.geometry[5], xoff=20.0)
    x, y = frame.geometry[6].centroid.coords[0]
    d = 0.001  # a figure eight: two squares meeting at one point (repaired: same area)
    frame.loc[6, "geometry"] = shapely.Polygon(
        [(x, y), (x + d, y), (x + d, y + d), (x + 2 * d, y + d), (x + 2 * d, y + 2 * d),
         (x + d, y + 2 * d), (x + d, y + d), (x, y + d), (x, y)])
    frame.loc[7, "geometry"] = shapely.LineString([(x, y), (x + d, y + d)])


def test_rejected_features_are_explained(db: Engine, loaded: dict, tmp_path: Path) -> None:
    path = small_delivery(tmp_path, _bad)
    before, snapshot = versions(db), data_snapshot(db)
    result = load_boundaries(db, path)
    assert result.status == "rejected"
    found = {(i.feature_no, i.field): i.reason for i in result.rejects}
    assert "commune 99999 is not a unit of the pre-2025 units" in found[(2, "commune_code")]
    assert "(GSO catalogue), not" in found[(3, "district_code")]
    assert "delivered more than once (also feature 4)" in found[(5, "commune_code")]
    assert "delivered more than once (also feature 5)" in found[(4, "commune_code")]
    assert "outside Vietnam" in found[(6, "geometry")]
    assert "LineString where a polygon belongs" in found[(8, "geometry")]
    assert [i.feature_no for i in result.repairs] == [7]
    assert "invalid geometry repaired" in result.repairs[0].reason
    lines = result.detail_lines()
    assert any(line.startswith(f"{path.name} feature 2 field commune_code") for line in lines)
    assert any(line.endswith("[repaired]") for line in lines)
    assert versions(db) == before and data_snapshot(db) == snapshot
    with db.connect() as conn:
        stored = conn.execute(text("SELECT feature_no, field FROM etl.load_reject "
                                   "WHERE run_id = :r AND reason NOT LIKE '[%'"),
                              {"r": result.run_id}).all()
    assert {tuple(r) for r in stored} == set(found)

    quarantined = load_boundaries(db, path, quarantine=True)
    assert quarantined.status == "loaded" and quarantined.rejected == 6
    # feature 7 (repaired, a new shape for its commune) is the only change
    assert quarantined.updated == 1 and quarantined.unchanged == len(gpd.read_file(DANANG)) - 7
    # restore the sample shape (a re-delivery again: versions are kept)
    assert load_boundaries(db, DANANG).updated == 1


def test_a_period_must_be_known(db: Engine, loaded: dict, tmp_path: Path) -> None:
    def drop_districts(frame: gpd.GeoDataFrame) -> None:
        del frame["Mã huyện"]

    path = small_delivery(tmp_path, drop_districts)
    result = load_boundaries(db, path)
    assert result.status == "failed" and "--period pre2025" in result.message
    stated = load_boundaries(db, path, options=Options(period="pre2025"))
    assert stated.status == "loaded" and stated.unchanged == stated.features_read


# --- inside the district, by the boundary ---------------------------------------------
def over_tay_ho(engine: Engine) -> dict:
    """A Tây Hồ (003) parcel inside Ba Đình's extent but outside its boundary: what the
    box let an officer of 001 write as their own."""
    with engine.connect() as conn:
        row = conn.execute(text("""
            SELECT ST_AsGeoJSON(p.geom, 9) AS geometry, p.computed_area_m2
              FROM cadastre.parcel p, admin.admin_unit d
             WHERE p.district_code = '003' AND p.status = 'current'
               AND d.level = 'district' AND d.code = '001' AND d.valid_to = DATE '2025-06-30'
               AND ST_CoveredBy(p.geom, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326))
               AND ST_Distance(p.geom::geography, d.geom::geography) > 100
             ORDER BY p.uid LIMIT 1"""), dict(zip(("x0", "y0", "x1", "y1"), BA_DINH_EXTENT,
                                                 strict=True))).mappings().one()
    return {"geometry": json.loads(row["geometry"]), "area_m2": float(row["computed_area_m2"])}


def parcel_file(tmp_path: Path, features: list[dict]) -> Path:
    path = tmp_path / "thua_dat.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                    encoding="utf-8")
    (tmp_path / "thua_dat.parcels.yaml").write_text("scale: 2000\n", encoding="utf-8")
    return path


def parcel(commune: str, sheet: int, no: int, geometry: dict, area: float) -> dict:
    return {"type": "Feature", "geometry": geometry,
            "properties": {"MaXa": commune, "SoHieuToBanDo": sheet, "SoThuTuThua": no,
                           "DienTich": area, "KyHieuMucDichSuDung": "ODT"}}


def test_a_parcel_outside_its_district_boundary_is_refused(
        db: Engine, parcels: dict, tmp_path: Path) -> None:
    tay_ho = over_tay_ho(db)
    snapshot = data_snapshot(db)
    path = parcel_file(tmp_path, [parcel("00001", TEST_SHEET, 1, tay_ho["geometry"],
                                         tay_ho["area_m2"])])
    result = load_parcels(db, path)
    assert result.status == "rejected"
    [issue] = [i for i in result.rejects if i.field == "geometry" and "boundary" in i.reason]
    assert issue.feature_no == 1
    assert "outside district 001's boundary" in issue.reason
    assert "it lies in district 003" in issue.reason
    assert data_snapshot(db) == snapshot

    # inside the district, outside its own commune: named, with the commune it lies in
    with db.connect() as conn:
        a, b, geometry, area = conn.execute(text("""
            SELECT p.commune_code, o.code, ST_AsGeoJSON(p.geom, 9), p.computed_area_m2
              FROM cadastre.parcel p
              JOIN admin.admin_unit o ON o.level = 'commune' AND o.parent_code = '001'
                                     AND o.code <> p.commune_code
                                     AND o.valid_to = DATE '2025-06-30'
             WHERE p.district_code = '001' ORDER BY p.uid, o.code LIMIT 1""")).one()
    path = parcel_file(tmp_path, [parcel(b, TEST_SHEET, 2, json.loads(geometry), float(area))])
    result = load_parcels(db, path)
    assert result.status == "rejected"
    [issue] = [i for i in result.rejects if i.field == "commune_code"]
    assert f"outside the boundary of its commune {b}" in issue.reason
    assert f"it lies in commune {a}" in issue.reason
    assert data_snapshot(db) == snapshot


def test_a_plan_zone_outside_its_district_boundary_is_refused(
        db: Engine, parcels: dict, tmp_path: Path) -> None:
    """Planning zones are located the same way: one of Ba Đình's zones moved onto Tây Hồ's
    ground, still inside Ba Đình's extent, refuses the plan."""
    plans = SAMPLES / "plans"
    frame = gpd.read_file(plans / "zoning_001_ba_dinh.shp").to_crs(4326)
    zone = frame.geometry[0]
    cx, cy = zone.centroid.coords[0]
    moved = shapely.affinity.scale(zone, 0.3, 0.3)
    frame.loc[0, "geometry"] = shapely.affinity.translate(moved, 105.83 - cx, 21.0505 - cy)
    frame.loc[0, "DienTich"] = None  # a zone need not state its area
    assert shapely.box(*BA_DINH_EXTENT).contains(frame.geometry[0])
    path = tmp_path / "zoning_001.gpkg"
    frame.to_file(path, driver="GPKG")
    (tmp_path / "zoning_001.plan.yaml").write_text(
        (plans / "zoning_001_ba_dinh.plan.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    snapshot = data_snapshot(db)
    result = load_plan(db, path)
    assert result.status == "rejected", result.summary()
    [issue] = result.rejects
    assert (issue.feature_no, issue.field) == (1, "geometry")
    assert "zone lies outside district 001's boundary" in issue.reason
    assert "it lies in district 003" in issue.reason and "QHPK-001-2021-2030" in issue.reason
    assert data_snapshot(db) == snapshot
    quarantined = load_plan(db, path, quarantine=True)
    assert quarantined.status == "loaded" and quarantined.inserted == len(frame) - 1


# --- versions -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fresh_url(server_url: URL) -> URL:
    return create_database(server_url, "lis_boundaries_versions")


@pytest.fixture(scope="module")
def fresh(fresh_url: URL) -> Iterator[Engine]:
    """A database with no boundary loaded: districts known by their extent only."""
    engine = make_engine(fresh_url)
    yield engine
    engine.dispose()


def test_only_an_extent_is_said_so(fresh: Engine, tmp_path: Path) -> None:
    frame = gpd.read_file(SAMPLES / "parcels_491_thanh_khe.geojson").iloc[:5]
    path = tmp_path / "thanh_khe.geojson"
    frame.to_file(path, driver="GeoJSON")
    (tmp_path / "thanh_khe.parcels.yaml").write_text("scale: 2000\n", encoding="utf-8")
    result = load_parcels(fresh, path)
    assert result.status == "loaded", result.detail_lines()
    [note] = [n for n in result.notes if n.field == "geometry"]
    assert note.feature_no == 0 and note.value == "491"
    assert "no boundary loaded, only its extent (a bounding box)" in note.reason
    assert "checked against that box only" in note.reason
    with fresh.connect() as conn:
        stored = conn.execute(text("SELECT reason FROM etl.load_reject WHERE run_id = :r"),
                              {"r": result.run_id}).scalars().all()
    assert any(r.startswith("[note]") and "only its extent" in r for r in stored), stored

    moved = frame.copy()
    moved["geometry"] = moved.geometry.translate(xoff=0.09, yoff=0.09)  # Sơn Trà's ground
    path = tmp_path / "moved.geojson"
    moved.to_file(path, driver="GeoJSON")
    result = load_parcels(fresh, path)
    assert result.status == "rejected"
    assert all("outside district 491's extent (a bounding box" in i.reason
               and "no boundary of the district is loaded" in i.reason
               for i in result.rejects if i.field == "geometry")
    assert {i.feature_no for i in result.rejects} == {1, 2, 3, 4, 5}


def test_a_redelivery_supersedes_the_previous_version(fresh: Engine, tmp_path: Path) -> None:
    # the sample holds four of Thanh Khê's six wards: the other two as boxes east of its
    # town, so every commune of 491 is bounded and the district is derived
    frame = gpd.read_file(DANANG)
    mine = frame[frame["Mã huyện"] == "491"]
    x0, y0, x1, y1 = mine.total_bounds
    with (PROJECT / "landplatform" / "reference" / "admin_units_pre2025.csv").open(
            encoding="utf-8") as fh:
        rest = [r for r in csv.DictReader(fh) if r["district_code"] == "491"
                and r["commune_code"] not in set(mine["Mã xã"])]
    step = (y1 - y0) / len(rest)
    extra = [{**frame.iloc[0].to_dict(), "Mã xã": r["commune_code"], "Tên xã": r["commune_name"],
              "geometry": shapely.MultiPolygon([shapely.box(x1 + 0.0005, y0 + k * step,
                                                            x1 + 0.002, y0 + (k + 1) * step)])}
             for k, r in enumerate(rest)]
    frame = gpd.GeoDataFrame([*frame.to_dict("records"), *extra], geometry="geometry",
                             crs=frame.crs)
    whole = tmp_path / "dia_gioi_xa_491.gpkg"
    frame.to_file(whole, layer="dia_gioi_xa", driver="GPKG")
    first = load_boundaries(fresh, whole)
    assert first.status == "loaded" and first.derived == 1, first.detail_lines()
    code = frame.loc[0, "Mã xã"]
    # the commune's boundary resurveyed: its corner moved ~10 m
    ring = list(frame.geometry[0].geoms[0].exterior.coords)
    ring[0] = ring[-1] = (ring[0][0] - 0.0001, ring[0][1])
    frame.loc[0, "geometry"] = shapely.MultiPolygon([shapely.Polygon(ring)])
    path = tmp_path / "dia_gioi_xa_2026.gpkg"
    frame.to_file(path, layer="dia_gioi_xa", driver="GPKG")
    second = load_boundaries(fresh, path)
    assert second.status == "loaded"
    assert (second.inserted, second.updated, second.derived) == (0, 1, 1)
    rows = [r for r in versions(fresh) if r[1] in (code, frame.loc[0, "Mã huyện"])]
    commune = [r for r in rows if r[0] == "commune"]
    district = [r for r in rows if r[0] == "district"]
    assert [(r[2], r[3], r[4]) for r in commune] == [(1, "delivered", False),
                                                     (2, "delivered", True)]
    assert commune[0][5] == first.run_id and commune[0][6] == second.run_id
    assert commune[1][5] == second.run_id
    assert [(r[2], r[3], r[4]) for r in district] == [(1, "derived", False),
                                                      (2, "derived", True)]
    with fresh.connect() as conn:
        now = conn.execute(text("""
            SELECT ST_Equals(u.geom, ST_GeomFromText(:wkt, 4326)) FROM admin.admin_unit u
             WHERE u.level = 'commune' AND u.code = :c AND u.valid_to = DATE '2025-06-30'"""),
            {"wkt": frame.geometry[0].wkt, "c": code}).scalar()
    assert now
    assert load_boundaries(fresh, path).updated == 0  # the same re-delivery: nothing new


def test_lis_load_boundaries(fresh_url: URL, fresh: Engine, tmp_path: Path) -> None:
    """The command: a file loads (exit 0; again: nothing changes), a bad one is refused
    (exit 1) with its located rejects, a period stated."""
    env = {**os.environ, "DATABASE_URL": fresh_url.render_as_string(hide_password=False)}

    def lis(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "lis.cli", "load", "boundaries", *args,
                               "--quiet"], env=env, capture_output=True, text=True,
                              timeout=120)

    ok = lis(str(HANOI))
    assert ok.returncode == 0, ok.stderr
    assert "dia_gioi_xa_ha_noi.shp: loaded boundaries run" in ok.stdout
    again = lis(str(HANOI))
    communes = next(m["feature_count"] for m in boundary_manifest()
                    if m["file"] == HANOI.name)
    assert again.returncode == 0 and \
        f"0 inserted, 0 updated, {communes} unchanged" in again.stdout

    def unknown(frame: gpd.GeoDataFrame) -> None:
        frame.loc[0, "Mã xã"] = "99999"

    bad = lis(str(small_delivery(tmp_path, unknown)), "--period", "pre2025")
    assert bad.returncode == 1
    assert "xa.gpkg feature 1 field commune_code: commune 99999 is not a unit" in bad.stderr
    assert "REJECTED" in bad.stderr


# --- an officer's write over another district ------------------------------------------
def test_an_officer_write_over_another_district_gets_422(api: str, api_db: Engine) -> None:
    """Trust II's finding: an officer of 001 created a parcel exactly over district 003
    (201). The box of 001 covers that ground; its boundary does not."""
    officer = {"Authorization": "Bearer " + issue_local(
        TEST_AUTH_SECRET, sub="officer-001", role="officer", district="001")}
    tay_ho = over_tay_ho(api_db)
    minx, miny, maxx, maxy = shapely.geometry.shape(tay_ho["geometry"]).bounds
    x0, y0, x1, y1 = BA_DINH_EXTENT
    assert x0 <= minx and y0 <= miny and maxx <= x1 and maxy <= y1  # the box let it in
    with api_db.connect() as conn:
        commune, uid = conn.execute(text(
            "SELECT commune_code, uid FROM cadastre.parcel WHERE district_code = '001' "
            "AND status = 'current' ORDER BY uid DESC LIMIT 1")).one()
    body = {"type": "Feature", "geometry": tay_ho["geometry"],
            "properties": {"commune_code": commune, "sheet_no": TEST_SHEET, "parcel_no": 7,
                           "area_m2": tay_ho["area_m2"], "land_use": "ODT"}}
    snapshot = data_snapshot(api_db)
    r = httpx.post(f"{api}/collections/parcels-001/items", json=body, headers=officer)
    assert r.status_code == 422, r.text
    [issue] = r.json()["issues"]
    assert issue["feature"] == 1 and issue["field"] == "geometry"
    assert "outside district 001's boundary" in issue["reason"]
    assert "it lies in district 003" in issue["reason"]

    # replacing one of 001's parcels with that ground: the same answer
    with api_db.connect() as conn:
        current = conn.execute(text(
            "SELECT sheet_no, parcel_no FROM cadastre.parcel WHERE uid = :u"), {"u": uid}).one()
    body["properties"].update(sheet_no=current.sheet_no, parcel_no=current.parcel_no)
    r = httpx.put(f"{api}/collections/parcels-001/items/{uid}", json=body, headers=officer)
    assert r.status_code == 422, r.text
    assert "outside district 001's boundary" in r.json()["description"]
    assert data_snapshot(api_db) == snapshot
