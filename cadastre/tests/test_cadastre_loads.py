"""Loading delivered parcel files: every sample format, every class of bad input,
idempotency, updates with history, quarantine, and a load killed half-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
import shapely.affinity
import shapely.geometry
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine

from cadastre.loader import load_parcels
from cadastre.rules import Options, permissible_area_error
from landplatform.db import make_engine
from support import SAMPLES, create_database, data_snapshot, free_ground

GEOJSON = SAMPLES / "parcels_491_thanh_khe.geojson"
SHAPEFILE = SAMPLES / "parcels_001_ba_dinh.shp"


@pytest.fixture(scope="module")
def etl_url(server_url: URL) -> URL:
    return create_database(server_url, "lis_etl")


@pytest.fixture(scope="module")
def db(etl_url: URL) -> Iterator[Engine]:
    engine = make_engine(etl_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def loaded(db: Engine, manifest: list[dict]) -> dict[str, object]:
    """All samples loaded once into this module's database."""
    results = {e["file"]: load_parcels(db, SAMPLES / e["file"]) for e in manifest}
    return results


def small_geojson(tmp_path: Path, edit=None, n: int = 20, name: str = "bad.geojson") -> Path:  # noqa: ANN001
    """The first ``n`` features of the Thanh Khê sample, optionally edited."""
    doc = json.loads(GEOJSON.read_text(encoding="utf-8"))
    doc["features"] = doc["features"][:n]
    if edit:
        edit(doc["features"])
    path = tmp_path / name
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


# --- every sample format loads -------------------------------------------------------
def test_each_sample_format_loads(db: Engine, loaded: dict, manifest: list[dict]) -> None:
    with db.connect() as conn:
        counts = dict(conn.execute(text(
            "SELECT district_code, count(*) FROM cadastre.parcel GROUP BY 1")).all())
        owners = conn.execute(text("SELECT count(*) FROM restricted.land_right")).scalar()
    formats = set()
    for entry in manifest:
        result = loaded[entry["file"]]
        assert result.status == "loaded", result.summary()
        assert result.inserted == entry["feature_count"]
        assert counts[entry["district_code"]] == entry["feature_count"]
        formats.add(entry["format"])
    assert formats == {"ESRI Shapefile", "GPKG", "GeoJSON"}
    # one right per holder of the holders files (couples and co-holders share a parcel)
    assert owners == sum(e["holder_count"] for e in manifest)


def test_reprojected_areas_match_stated(db: Engine, loaded: dict, manifest: list[dict]
                                        ) -> None:
    """Geometry stored in WGS84, measured back in the province's TM-3: within the
    regulation's permissible difference at the file's scale (ΔP = 0.0004·M·√P)."""
    scales = {e["district_code"]: e["scale"] for e in manifest}
    with db.connect() as conn:
        rows = conn.execute(text("""
            SELECT p.district_code, p.area_m2, ST_Area(ST_Transform(p.geom, c.epsg))
              FROM cadastre.parcel p JOIN admin.province_crs c USING (province_code)""")
        ).all()
    stated = np.array([float(r[1]) for r in rows])
    drawn = np.array([float(r[2]) for r in rows])
    scale = np.array([scales[r[0]] for r in rows], dtype=float)
    over = np.abs(drawn - stated) > permissible_area_error(stated, scale)
    assert len(rows) == sum(e["feature_count"] for e in manifest) and not over.any(), (
        [rows[i] for i in np.flatnonzero(over)[:5]])


def test_superseded_codes_are_mapped_and_reported(db: Engine, loaded: dict) -> None:
    result = loaded[SHAPEFILE.name]
    assert result.repairs and all("BHK mapped to HNK" in r.reason for r in result.repairs)
    with db.connect() as conn:
        bhk = conn.execute(text("SELECT count(*) FROM cadastre.parcel_land_use "
                                "WHERE source_code = 'BHK' AND code = 'HNK'")).scalar()
    assert bhk == len(result.repairs)


def test_multi_purpose_parcels_have_parts(db: Engine, loaded: dict) -> None:
    with db.connect() as conn:
        row = conn.execute(text("""
            SELECT p.land_use, array_agg(u.code ORDER BY u.seq) AS parts,
                   bool_and(u.is_primary = (u.seq = 1)) AS primary_first
              FROM cadastre.parcel p JOIN cadastre.parcel_land_use u
                ON u.district_code = p.district_code AND u.parcel_uid = p.uid
             WHERE p.land_use LIKE '%+%' GROUP BY p.uid, p.land_use LIMIT 1""")).one()
    assert row.parts == row.land_use.split("+") and row.primary_first


# --- idempotency -----------------------------------------------------------------------
def test_reloading_the_same_file_changes_nothing(db: Engine, loaded: dict) -> None:
    before = data_snapshot(db)
    for path in (SHAPEFILE, GEOJSON, SAMPLES / "parcels_003_tay_ho.gpkg"):
        result = load_parcels(db, path)
        assert result.status == "loaded"
        assert (result.inserted, result.updated) == (0, 0)
        assert result.unchanged == result.features_read
    assert data_snapshot(db) == before


def test_changed_parcel_is_updated_with_history(db: Engine, loaded: dict,
                                                tmp_path: Path) -> None:
    def edit(features: list[dict]) -> None:
        features[0]["properties"]["muc_dich"] = "TMD"

    path = small_geojson(tmp_path, edit, n=5, name="changed.geojson")
    result = load_parcels(db, path)
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 4)
    key = json.loads(path.read_text())["features"][0]["properties"]
    with db.connect() as conn:
        uid, land_use = conn.execute(text(
            "SELECT uid, land_use FROM cadastre.parcel WHERE commune_code = :c AND "
            "sheet_no = :s AND parcel_no = :p"),
            {"c": key["ma_xa"], "s": key["so_to"], "p": key["so_thua"]}).one()
        history = conn.execute(text(
            "SELECT land_use FROM cadastre.parcel_history WHERE uid = :u"), {"u": uid}).all()
        events = conn.execute(text(
            "SELECT kind FROM cadastre.parcel_event WHERE parcel_uid = :u ORDER BY event_id"),
            {"u": uid}).scalars().all()
    assert land_use == "TMD" and len(history) == 1 and history[0].land_use != "TMD"
    assert events == ["create", "update"]
    # restore the sample so later tests see the delivered data
    assert load_parcels(db, small_geojson(tmp_path, n=5, name="restore.geojson")).updated == 1


def test_low_zoom_shapes_are_drawn_again_only_where_parcels_moved(
        db: Engine, loaded: dict, tmp_path: Path) -> None:
    """A delivery that changes a stated area recounts the summary and keeps its shapes
    (the union of a commune's parcels is the dearest part of a small re-delivery); one
    that gives a parcel a new outline draws its commune again."""
    def summary() -> dict[str, tuple]:
        with db.connect() as conn:
            return {r[0]: (bytes(r[1]), r[2], r[3]) for r in conn.execute(text(
                "SELECT level || ':' || code, ST_AsBinary(geom), area_m2, shape_source "
                "FROM cadastre.parcel_summary WHERE district_code = '491'"))}

    doc = json.loads(GEOJSON.read_text(encoding="utf-8"))
    commune = "commune:" + doc["features"][0]["properties"]["ma_xa"]
    before = summary()
    assert before[commune][2] == "parcels"  # no commune boundary in this database

    def restated(features: list[dict]) -> None:
        features[0]["properties"]["dien_tich"] = round(
            features[0]["properties"]["dien_tich"] + 0.3, 1)
    result = load_parcels(db, small_geojson(tmp_path, restated, name="restated.geojson"))
    assert (result.status, result.updated) == ("loaded", 1), result.summary()
    after = summary()
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}
    assert after[commune][1] == before[commune][1] + Decimal("0.3")

    def moved(features: list[dict]) -> None:  # the lot drawn 1% smaller about its centre
        shape = shapely.geometry.shape(features[0]["geometry"])
        smaller = shapely.affinity.scale(shape, 0.995, 0.995, origin="centroid")
        features[0]["geometry"] = shapely.geometry.mapping(smaller)
        features[0]["properties"]["dien_tich"] = round(
            features[0]["properties"]["dien_tich"] * 0.995 ** 2, 1)
    result = load_parcels(db, small_geojson(tmp_path, moved, name="moved.geojson"))
    assert (result.status, result.updated) == ("loaded", 1), [
        i.line("moved.geojson") for i in result.rejects]
    redrawn = summary()
    assert redrawn[commune][0] != after[commune][0]
    assert all(redrawn[k][0] == after[k][0] for k in after
               if k.startswith("commune:") and k != commune)
    restored = load_parcels(db, small_geojson(tmp_path, name="restore.geojson"))
    assert restored.status == "loaded" and summary() == before


# --- bad input: each class gets a clear, located error and changes nothing -------------
def _bow_tie(features: list[dict]) -> None:
    ring = features[3]["geometry"]["coordinates"][0]
    ring[1], ring[2] = ring[2], ring[1]


def _outside_vietnam(features: list[dict]) -> None:
    for ring in features[4]["geometry"]["coordinates"]:
        for pt in ring:
            pt[0] += 20.0


def _other_district(features: list[dict]) -> None:
    # move the parcel ~10 km north-west: still Đà Nẵng, no longer Thanh Khê (491)
    for ring in features[5]["geometry"]["coordinates"]:
        for pt in ring:
            pt[0] -= 0.09
            pt[1] += 0.09


def _set(index: int, field: str, value: object):  # noqa: ANN202
    def edit(features: list[dict]) -> None:
        features[index]["properties"][field] = value
    return edit


def _line(features: list[dict]) -> None:
    ring = features[7]["geometry"]["coordinates"][0]
    features[7]["geometry"] = {"type": "LineString", "coordinates": ring}


def _duplicate(features: list[dict]) -> None:
    a, b = features[8]["properties"], features[9]["properties"]
    b["ma_xa"], b["so_to"], b["so_thua"] = a["ma_xa"], a["so_to"], a["so_thua"]


def _area(features: list[dict]) -> None:
    features[10]["properties"]["dien_tich"] *= 1.2


def _empty(features: list[dict]) -> None:
    features[11]["geometry"] = None


BAD_FEATURES = [
    ("invalid geometry", _bow_tie, 4, "geometry", "invalid geometry"),
    ("outside Vietnam", _outside_vietnam, 5, "geometry", "outside Vietnam"),
    ("outside the district", _other_district, 6, "geometry", "outside district 491"),
    ("missing value", _set(2, "muc_dich", None), 3, "land_use", "required value is missing"),
    ("unknown land-use code", _set(2, "muc_dich", "ODT+XYZ"), 3, "land_use",
     "unknown land-use code 'XYZ'"),
    ("unknown commune", _set(2, "ma_xa", "99999"), 3, "commune_code", "not a commune code"),
    ("text in a number field", _set(2, "so_to", "mười"), 3, "sheet_no", "not a number"),
    ("line where a polygon belongs", _line, 8, "geometry", "LineString where a polygon"),
    ("duplicate key", _duplicate, 9, "parcel_no", "duplicate key"),
    ("area differs from geometry", _area, 11, "area_m2", "differs from the geometry"),
    ("empty geometry", _empty, 12, "geometry", "empty or missing"),
]


@pytest.mark.parametrize(("case", "edit", "feature_no", "field", "reason"), BAD_FEATURES,
                         ids=[c[0] for c in BAD_FEATURES])
def test_bad_feature_rejects_the_file(db: Engine, loaded: dict, tmp_path: Path, case: str,
                                      edit, feature_no: int, field: str,  # noqa: ANN001
                                      reason: str) -> None:
    path = small_geojson(tmp_path, edit)
    before = data_snapshot(db)
    result = load_parcels(db, path)
    assert result.status == "rejected", case
    hits = [i for i in result.rejects if i.feature_no == feature_no and i.field == field]
    assert hits and reason in hits[0].reason, [i.line(path.name) for i in result.rejects]
    assert hits[0].line(path.name).startswith(f"{path.name} feature {feature_no} field {field}")
    assert data_snapshot(db) == before
    with db.connect() as conn:
        stored = conn.execute(text(
            "SELECT r.status, j.reason FROM etl.load_run r JOIN etl.load_reject j USING (run_id)"
            " WHERE r.run_id = :id AND j.feature_no = :no"),
            {"id": result.run_id, "no": feature_no}).first()
    assert stored is not None and stored.status == "rejected" and reason in stored.reason


def test_a_certificate_serial_is_one_certificate(db: Engine, loaded: dict,
                                               tmp_path: Path) -> None:
    """A serial printed once in the country: one already registered for a parcel of another
    district, or given twice with two issue dates, is a located reject that never quotes
    the serial; one certificate over two parcels on one date loads."""
    ba_dinh = pyogrio.read_dataframe(SHAPEFILE, columns=["SoGCN"], read_geometry=False)
    foreign = ba_dinh["SoGCN"].dropna().iloc[0]
    doc = json.loads(GEOJSON.read_text(encoding="utf-8"))
    held = [i for i, f in enumerate(doc["features"][:20]) if f["properties"]["so_gcn"]]
    a, b, c = held[:3]

    def edit(features: list[dict]) -> None:
        features[a]["properties"]["so_gcn"] = foreign
        features[c]["properties"]["so_gcn"] = features[b]["properties"]["so_gcn"]
        features[c]["properties"]["ngay_cap_gcn"] = "2011-03-04"
    path = small_geojson(tmp_path, edit)
    before = data_snapshot(db)
    result = load_parcels(db, path)
    assert result.status == "rejected" and data_snapshot(db) == before
    found = {(i.feature_no, i.field): i.reason for i in result.rejects}
    assert "registered for a parcel of district 001" in found[(a + 1, "certificate_serial")]
    for no, other in ((b + 1, c + 1), (c + 1, b + 1)):
        assert f"other issue dates or districts by feature {other}" in found[
            (no, "certificate_serial")]
    assert foreign not in " ".join(i.line(path.name) for i in result.rejects)

    def shared(features: list[dict]) -> None:  # one certificate, two parcels: fine
        for key in ("so_gcn", "ngay_cap_gcn"):
            features[c]["properties"][key] = features[b]["properties"][key]
    one = load_parcels(db, small_geojson(tmp_path, shared, name="shared.geojson"))
    assert one.status == "loaded", one.summary()
    restored = load_parcels(db, small_geojson(tmp_path, name="restore.geojson"))
    assert restored.status == "loaded" and data_snapshot(db)["cadastre.parcel"] == before[
        "cadastre.parcel"]


def test_missing_required_field_fails_the_file(db: Engine, loaded: dict,
                                               tmp_path: Path) -> None:
    def drop(features: list[dict]) -> None:
        for f in features:
            del f["properties"]["so_thua"]

    before = data_snapshot(db)
    result = load_parcels(db, small_geojson(tmp_path, drop))
    assert result.status == "failed"
    assert "required field(s) missing: parcel_no" in result.message
    assert "SoThuTuThua" in result.message  # tells the officer what names are accepted
    assert data_snapshot(db) == before


def test_missing_crs_needs_stating(db: Engine, loaded: dict, tmp_path: Path) -> None:
    """A Shapefile without .prj fails with advice; stating --crs loads it."""
    for part in SHAPEFILE.parent.glob(SHAPEFILE.stem + ".*"):
        if part.suffix != ".prj":
            (tmp_path / part.name).write_bytes(part.read_bytes())
    path = tmp_path / SHAPEFILE.name
    before = data_snapshot(db)
    result = load_parcels(db, path)
    assert result.status == "failed" and "--crs EPSG:5897" in result.message
    assert data_snapshot(db) == before
    stated = load_parcels(db, path, options=Options(crs="EPSG:5897"))
    assert stated.status == "loaded" and stated.unchanged == stated.features_read
    wrong = load_parcels(db, path, options=Options(crs="EPSG:4326"))
    assert wrong.status == "rejected"
    assert any(i.feature_no == 0 and "CRS" in i.reason for i in wrong.rejects)
    assert data_snapshot(db) == before


def test_incomplete_shapefile_fails(db: Engine, tmp_path: Path) -> None:
    (tmp_path / "x.shp").write_bytes(SHAPEFILE.read_bytes())
    result = load_parcels(db, tmp_path / "x.shp")
    assert result.status == "failed" and ".shx and .dbf missing" in result.message


def test_3d_coordinates_are_repaired_and_reported(db: Engine, loaded: dict,
                                                 tmp_path: Path) -> None:
    def add_z(features: list[dict]) -> None:
        for ring in features[0]["geometry"]["coordinates"]:
            for pt in ring:
                pt.append(12.5)

    result = load_parcels(db, small_geojson(tmp_path, add_z))
    assert result.status == "loaded" and result.unchanged == 20
    assert [(r.feature_no, r.reason) for r in result.repairs] == [(1, "3-D coordinates: "
                                                                      "Z dropped")]


def test_quarantine_loads_the_good_rows(db: Engine, loaded: dict, tmp_path: Path) -> None:
    def new_sheet_with_bad_rows(features: list[dict]) -> None:
        for f in features:
            f["properties"]["so_to"] += 900  # new parcels, so the load inserts them
            f["properties"]["TyLe"] = 2000  # a new sheet: its scale (the samples' lots)
        _bow_tie(features)
        features[2]["properties"]["muc_dich"] = "XYZ"

    path = small_geojson(tmp_path, new_sheet_with_bad_rows)
    with free_ground(db, "district_code = '491' AND sheet_no < 900"):  # where they go
        quarantine_loads_the_good_rows(db, path)


def quarantine_loads_the_good_rows(db: Engine, path: Path) -> None:
    strict = load_parcels(db, path)
    assert strict.status == "rejected" and strict.rejected == 2
    result = load_parcels(db, path, quarantine=True)
    assert result.status == "loaded" and result.inserted == 18 and result.rejected == 2
    with db.connect() as conn:
        run = conn.execute(text("SELECT mode, inserted, rejected FROM etl.load_run "
                                "WHERE run_id = :id"), {"id": result.run_id}).one()
        rejects = conn.execute(text("SELECT feature_no FROM etl.load_reject WHERE run_id = :id"
                                    " AND reason NOT LIKE '[%' ORDER BY 1"),  # not notes
                               {"id": result.run_id}).scalars().all()
        conn.execute(text("DELETE FROM cadastre.parcel WHERE sheet_no > 900"))
        conn.execute(text("SELECT 1"))
        conn.commit()
    assert tuple(run) == ("quarantine", 18, 2) and rejects == [3, 4]


def test_cli_reports_and_exits_nonzero(etl_url: URL, loaded: dict, tmp_path: Path) -> None:
    path = small_geojson(tmp_path, _set(2, "muc_dich", "XYZ"))
    report = tmp_path / "rejects.csv"
    env = {**os.environ, "DATABASE_URL": etl_url.render_as_string(hide_password=False)}
    proc = subprocess.run([sys.executable, "-m", "lis.cli", "load", "parcels",
                           str(path), "--report", str(report)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    assert "bad.geojson feature 3 field land_use: unknown land-use code 'XYZ'" in proc.stderr
    assert "REJECTED" in proc.stderr and "nothing was loaded" in proc.stderr
    assert "unknown land-use code" in report.read_text(encoding="utf-8")


# --- a load killed half-way leaves the database as it was ------------------------------
def test_load_killed_mid_merge_changes_nothing(db: Engine, etl_url: URL, loaded: dict,
                                               tmp_path: Path) -> None:
    """Block the merge on a lock, SIGKILL the loader while it waits, compare."""
    frame = pyogrio.read_dataframe(GEOJSON)
    frame["so_to"] = frame["so_to"] + 500  # all new parcels: the merge would insert 2,000
    frame["TyLe"] = 2000  # new sheets: their scale (the samples' lots)
    path = tmp_path / "kill.geojson"
    pyogrio.write_dataframe(frame, path, driver="GeoJSON")
    with free_ground(db, "district_code = '491' AND sheet_no < 500"):  # where they go
        killed_mid_merge(db, etl_url, path)


def killed_mid_merge(db: Engine, etl_url: URL, path: Path) -> None:
    before = data_snapshot(db)
    env = {**os.environ, "DATABASE_URL": etl_url.render_as_string(hide_password=False)}
    with db.connect() as blocker:
        blocker.execute(text("LOCK TABLE cadastre.parcel_history IN EXCLUSIVE MODE"))
        proc = subprocess.Popen([sys.executable, "-m", "lis.cli", "load", "parcels",
                                 str(path), "--quiet"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            waiting = False
            while time.monotonic() < deadline and proc.poll() is None and not waiting:
                time.sleep(0.2)
                with db.connect() as probe:
                    waiting = bool(probe.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lis-cli' "
                        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")).scalar())
            assert waiting, "the loader never reached the merge"
            with db.connect() as probe:  # it has staged and inserted inside its transaction
                staged = probe.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND "
                    "backend_xid IS NOT NULL AND application_name = 'lis-cli'")).scalar()
            assert staged == 1
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        blocker.rollback()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the server notices the dead client and rolls back
        with db.connect() as conn:
            if not conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE "
                                     "application_name = 'lis-cli' AND pid <> pg_backend_pid() "
                                     "AND backend_xid IS NOT NULL")).scalar():
                break
        time.sleep(0.2)
    assert data_snapshot(db) == before
    with db.connect() as conn:
        assert not conn.execute(text("SELECT count(*) FROM cadastre.parcel "
                                     "WHERE sheet_no > 500")).scalar()


def test_stored_geometry_is_valid_multipolygon(db: Engine, loaded: dict) -> None:
    with db.connect() as conn:
        bad = conn.execute(text("SELECT count(*) FROM cadastre.parcel WHERE NOT ST_IsValid(geom)"
                                " OR GeometryType(geom) <> 'MULTIPOLYGON' OR ST_SRID(geom) "
                                "<> 4326")).scalar()
        wkb = conn.execute(text("SELECT ST_AsBinary(geom) FROM cadastre.parcel LIMIT 5")
                           ).scalars().all()
    assert bad == 0
    assert np.all(shapely.is_valid(shapely.from_wkb([bytes(w) for w in wkb])))


def test_district_with_no_current_parcel_counts_zero(db: Engine, loaded: dict) -> None:
    """Retiring a district's last parcel takes it out of publication (rolled back after)."""
    from cadastre.merge import refresh_district_summary

    with db.connect() as conn:
        conn.execute(text("UPDATE cadastre.parcel SET status = 'historic' "
                          "WHERE district_code = '491'"))
        refresh_district_summary(conn, ["491"])
        count = conn.execute(text("SELECT parcel_count FROM cadastre.district_summary "
                                  "WHERE district_code = '491'")).scalar()
        published = conn.execute(text("SELECT count(*) FROM publish.districts "
                                      "WHERE district_code = '491'")).scalar()
        conn.rollback()
    assert count == 0 and published == 0


def test_a_big_load_leaves_the_planner_statistics_current(server_url: URL) -> None:
    """Loaded as the application role (which owns no table): the parcel tables are
    analysed before the load returns; a small change analyses nothing."""
    from landplatform.roles import APP
    from support import role_url

    url = create_database(server_url, "lis_statistics")
    app = make_engine(role_url(url, APP))
    admin = make_engine(url)

    def analysed() -> dict[str, tuple[float, object]]:
        with admin.connect() as conn:
            return {r.relname: (r.reltuples, r.last_analyze) for r in conn.execute(text("""
                SELECT c.relname, c.reltuples, s.last_analyze FROM pg_class c
                  JOIN pg_stat_user_tables s ON s.relid = c.oid
                 WHERE s.schemaname = 'cadastre'
                   AND c.relname IN ('parcel', 'parcel_land_use')"""))}

    try:
        assert analysed()["parcel"][0] < 0  # never analysed: the planner guesses
        result = load_parcels(app, SAMPLES / "parcels_001_ba_dinh.shp")
        assert result.status == "loaded" and result.inserted > 500
        after = analysed()
        assert after["parcel"][0] == result.inserted, after
        assert after["parcel_land_use"][1] is not None
        assert not [n for n in result.notes if n.field == "statistics"]
        again = load_parcels(app, SAMPLES / "parcels_001_ba_dinh.shp")  # nothing changes
        assert again.inserted + again.updated == 0
        assert analysed()["parcel"][1] == after["parcel"][1]
    finally:
        app.dispose()
        admin.dispose()


# --- a file streamed in batches --------------------------------------------------------
def test_batches_find_duplicates_across_batches(db: Engine, loaded: dict,
                                                tmp_path: Path) -> None:
    """Features 3 and 17 share a key, in different batches of 5: both are refused, each
    naming the other, with feature numbers counted from the file's start; strict mode
    loads nothing, quarantine loads the other 17."""
    def edit(features: list[dict]) -> None:
        a, b = features[2]["properties"], features[16]["properties"]
        b["ma_xa"], b["so_to"], b["so_thua"] = a["ma_xa"], a["so_to"], a["so_thua"]
        features[11]["geometry"] = None  # a refused row in a middle batch
    path = small_geojson(tmp_path, edit, name="batched.geojson")
    before = data_snapshot(db)
    strict = load_parcels(db, path, batch_features=5)
    assert strict.status == "rejected" and strict.features_read == 20
    assert data_snapshot(db) == before
    located = {(i.feature_no, i.field) for i in strict.rejects}
    assert located == {(3, "parcel_no"), (17, "parcel_no"), (12, "geometry")}
    by_no = {i.feature_no: i.reason for i in strict.rejects if i.field == "parcel_no"}
    assert by_no[3].endswith("(also feature 17)") and by_no[17].endswith("(also feature 3)")
    with db.connect() as conn:
        recorded = conn.execute(text(
            "SELECT feature_no FROM etl.load_reject WHERE run_id = :r ORDER BY 1"),
            {"r": strict.run_id}).scalars().all()
    assert recorded == [3, 12, 17]

    quarantined = load_parcels(db, path, quarantine=True, batch_features=5)
    assert quarantined.status == "loaded", quarantined.summary()
    # the samples are loaded already: the 17 good rows are those parcels, unchanged
    assert quarantined.unchanged == 17 and quarantined.rejected == 3
    assert quarantined.inserted == quarantined.updated == 0
    # the same file in one batch says the same
    whole = load_parcels(db, path, batch_features=100)
    assert {(i.feature_no, i.field, i.reason) for i in whole.rejects} == \
        {(i.feature_no, i.field, i.reason) for i in strict.rejects}


def test_bad_text_in_a_later_batch_fails_the_file_and_rolls_back(
        db: Engine, loaded: dict, tmp_path: Path) -> None:
    """Text in a wrong code page first seen in the fourth batch: the file fails, named
    at its feature, after three batches were staged; nothing is kept."""
    def edit(features: list[dict]) -> None:
        features[18]["properties"]["ten_chu"] = "Ph\u00b8\u00bbng Thanh Kh\u00aa"  # TCVN3
    path = small_geojson(tmp_path, edit, name="later.geojson")
    before = data_snapshot(db)
    result = load_parcels(db, path, batch_features=5)
    assert result.status == "failed", result.summary()
    assert "feature 19" in result.message and "Unicode" in result.message
    assert data_snapshot(db) == before
    with db.connect() as conn:
        status = conn.execute(text("SELECT status FROM etl.load_run WHERE run_id = :r"),
                              {"r": result.run_id}).scalar()
    assert status == "failed"
