"""The parcels at every zoom: below z12 the parcels collection's tiles hold the cadastre's
district and commune summaries (migration 0016), built in the database, kept current by
the loader, readable by the public role, within the tile budget."""

from __future__ import annotations

import gzip
import math
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pyogrio
import pytest
import shapely
from sqlalchemy import text

from cadastre.merge import refresh_district_summary
from landplatform.db import make_engine
from landplatform.roles import PUBLIC
from support import role_url

TMS = "WebMercatorQuad"
BUDGET_BYTES = 500 * 1024  # compressed, per tile (docs/tiles-lowzoom.md)
BUDGET_S = 5.0  # a cold build on the shared test machine, per tile


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def _decode(body: bytes, z: int, x: int, y: int, folder: Path) -> list[dict]:
    """The features of an MVT tile, read by GDAL's MVT driver (georeferenced by z/x/y)."""
    path = folder / str(z) / str(x) / f"{y}.pbf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    frame = pyogrio.read_dataframe(path, layer=pyogrio.list_layers(path)[0][0])
    return frame.drop(columns="geometry").to_dict("records")


def test_summaries_count_what_the_parcels_say(api_db) -> None:  # noqa: ANN001
    with api_db.connect() as conn:
        districts = {r.district_code: r.parcel_count for r in conn.execute(text(
            "SELECT district_code, parcel_count FROM publish.districts"))}
        summary = {r.district_code: r for r in conn.execute(text(
            "SELECT * FROM publish.parcel_summary_district"))}
        communes = conn.execute(text(
            "SELECT * FROM publish.parcel_summary_commune")).mappings().all()
        parcels = conn.execute(text(
            "SELECT district_code, commune_code, primary_land_use, "
            "coalesce(area_m2, ST_Area(geom::geography))::float8 AS area "
            "FROM publish.parcels")).mappings().all()
    assert districts and set(summary) == set(districts)
    for code, count in districts.items():
        assert summary[code].parcel_count == count
        assert summary[code].unit_name and summary[code].level == "district"
    per_commune: dict[str, Counter] = defaultdict(Counter)
    for p in parcels:
        per_commune[p["commune_code"]][p["primary_land_use"]] += p["area"]
    assert {c["commune_code"] for c in communes} == set(per_commune)
    for c in communes:
        uses = per_commune[c["commune_code"]]
        assert c["parcel_count"] == sum(1 for p in parcels
                                        if p["commune_code"] == c["commune_code"])
        top, area = uses.most_common(1)[0]
        assert c["primary_land_use"] == top
        assert float(c["dominant_share"]) == pytest.approx(area / sum(uses.values()), abs=0.001)
        assert c["land_use_mix"].startswith(f"{top} ")
        assert sum(x["parcel_count"] for x in communes
                   if x["district_code"] == c["district_code"]) == \
            districts[c["district_code"]]


def test_the_public_role_reads_the_summaries(api_db_url) -> None:  # noqa: ANN001
    engine = make_engine(role_url(api_db_url, PUBLIC))
    try:
        with engine.connect() as conn:
            for level in ("district", "commune"):
                assert conn.execute(text(
                    f"SELECT count(*) FROM publish.parcel_summary_{level}")).scalar() > 0
            with pytest.raises(Exception, match="permission denied"):
                conn.execute(text("SELECT count(*) FROM cadastre.parcel_summary"))
    finally:
        engine.dispose()


def test_a_load_keeps_the_summary_current_and_shapes_come_from_parcels_without_a_boundary(
        api_db) -> None:  # noqa: ANN001
    """What a load runs (``refresh_district_summary``) redraws the summaries: retired
    parcels leave the counts, and a commune without a delivered boundary is drawn as the
    union of its parcels. All in a transaction that is rolled back."""
    with api_db.connect() as conn:
        tx = conn.begin()
        try:
            row = conn.execute(text(
                "SELECT district_code, commune_code, parcel_count FROM "
                "publish.parcel_summary_commune ORDER BY commune_code LIMIT 1")).one()
            district, commune, before = row
            retired = conn.execute(text(
                "UPDATE cadastre.parcel SET status = 'historic' WHERE commune_code = :c "
                "AND status = 'current' AND parcel_no <= 3"), {"c": commune}).rowcount
            assert retired > 0
            conn.execute(text(
                "UPDATE admin.admin_unit SET geom_is_extent = true WHERE level = 'commune' "
                "AND code = :c"), {"c": commune})
            refresh_district_summary(conn, [district])
            after = conn.execute(text(
                "SELECT parcel_count, shape_source, ST_AsBinary(geom) AS geom FROM "
                "publish.parcel_summary_commune WHERE commune_code = :c"),
                {"c": commune}).one()
            assert after.parcel_count == before - retired
            assert after.shape_source == "parcels"
            parcels = [shapely.from_wkb(bytes(g)) for g in conn.execute(text(
                "SELECT ST_AsBinary(geom) FROM publish.parcels WHERE commune_code = :c"),
                {"c": commune}).scalars()]
            union = shapely.union_all(parcels)
            shape = shapely.from_wkb(bytes(after.geom))
            assert shape.symmetric_difference(union).area < 0.01 * union.area
            total = conn.execute(text(
                "SELECT parcel_count FROM publish.parcel_summary_district "
                "WHERE district_code = :d"), {"d": district}).scalar()
            assert total == conn.execute(text(
                "SELECT parcel_count FROM publish.districts WHERE district_code = :d"),
                {"d": district}).scalar()
        finally:
            tx.rollback()


def test_every_low_zoom_tile_shows_the_data_within_budget(api: str, api_db,  # noqa: ANN001
                                                          tmp_path: Path) -> None:
    """Each district appears in a non-empty tile of the parcels collection at every zoom
    0-22, its summary below z12 and parcels from z12; every tile of the tileset's limits
    below z12 is within the size and time budgets."""
    meta = httpx.get(f"{api}/collections/parcels/tiles/{TMS}", timeout=60).json()
    assert meta["minZoom"] == 0
    with api_db.connect() as conn:
        centres = conn.execute(text(
            "SELECT district_code, ST_X(ST_PointOnSurface(geom)), "
            "ST_Y(ST_PointOnSurface(geom)) FROM publish.parcel_summary_district")).all()
    for district, lon, lat in centres:
        for z in range(0, 23):
            x, y = _tile_of(lon, lat, z)
            r = httpx.get(f"{api}/collections/parcels/tiles/{TMS}/{z}/{y}/{x}", timeout=120)
            assert r.status_code == 200, (district, z, r.status_code)
            if z in (0, 8, 9, 11, 12):
                rows = _decode(r.content, z, x, y, tmp_path)
                mine = [p for p in rows if p["district_code"] == district]
                assert mine, (district, z)
                if z < 9:
                    assert {p["level"] for p in mine} == {"district"}
                elif z < 12:
                    assert {p["level"] for p in mine} == {"commune"}
                else:
                    assert all(p.get("parcel_ref") for p in mine)
    limits = {int(lim["tileMatrix"]): lim for lim in meta["tileMatrixSetLimits"]}
    for z in range(0, 12):
        lim = limits[z]
        cols = range(lim["minTileCol"], lim["maxTileCol"] + 1)
        rows = range(lim["minTileRow"], lim["maxTileRow"] + 1)
        if len(cols) * len(rows) > 64:  # the national extent: only the data's tiles
            wanted = {_tile_of(lon, lat, z) for _, lon, lat in centres}
        else:
            wanted = {(x, y) for x in cols for y in rows}
        for x, y in wanted:
            start = time.perf_counter()
            with httpx.Client(timeout=120) as client, client.stream(
                    "GET", f"{api}/collections/parcels/tiles/{TMS}/{z}/{y}/{x}",
                    headers={"Accept-Encoding": "gzip"}) as r:
                body = b"".join(r.iter_raw())
            elapsed = time.perf_counter() - start
            assert r.status_code in (200, 204), (z, x, y)
            if r.status_code == 200:
                assert r.headers["content-encoding"] == "gzip"
                assert len(body) <= BUDGET_BYTES, (z, x, y, len(body))
                assert gzip.decompress(body)
            assert elapsed < BUDGET_S, (z, x, y, elapsed)


def test_a_district_collection_shows_only_its_own_summary(api: str, manifest: list[dict],
                                                          tmp_path: Path) -> None:
    """``parcels-<d>`` is fixed to its district: its low-zoom tiles hold that district's
    shapes only, even where a tile covers its neighbours (z5 covers them all)."""
    codes = {e["district_code"] for e in manifest}
    district = manifest[0]["district_code"]
    bbox = httpx.get(f"{api}/collections/parcels-{district}", params={"f": "json"},
                     timeout=60).json()["extent"]["spatial"]["bbox"][0]
    x, y = _tile_of((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2, 5)
    national = _decode(httpx.get(f"{api}/collections/parcels/tiles/{TMS}/5/{y}/{x}",
                                 timeout=60).content, 5, x, y, tmp_path / "n")
    own = _decode(httpx.get(f"{api}/collections/parcels-{district}/tiles/{TMS}/5/{y}/{x}",
                            timeout=60).content, 5, x, y, tmp_path / "d")
    near = {p["district_code"] for p in national}
    assert district in near and near <= codes
    assert {p["district_code"] for p in own} == {district}
    tilejson = httpx.get(f"{api}/collections/parcels-{district}/tiles/{TMS}",
                         params={"f": "tilejson"}, timeout=60).json()
    assert tilejson["minzoom"] == 0 and tilejson["tiles"][0].endswith("/{z}/{y}/{x}")
    fields = tilejson["vector_layers"][0]["fields"]
    assert "parcel_ref" in fields and "parcel_count" in fields
