"""The JSON features path and vector tiles: key paging, honest counts, errors, caching,
conformance, and 503 instead of hanging when the pool is exhausted."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from cadastre.layers import PARCELS
from landplatform.db import make_engine
from landplatform.publish.features_api import FeaturesService, collections_from_config
from landplatform.publish.resources import collection
from landplatform.roles import PUBLIC
from support import role_url


def get(url: str, **params) -> httpx.Response:  # noqa: ANN003
    return httpx.get(url, params=params, timeout=60)


def test_paging_by_key_walks_a_district_once(api: str, manifest: list[dict]) -> None:
    entry = manifest[1]
    url = f"{api}/collections/parcels-{entry['district_code']}/items?limit=300"
    ids: list[int] = []
    for _ in range(50):  # bounded: 2,000 parcels / 300 per page
        page = httpx.get(url, timeout=60).json()
        ids += [f["id"] for f in page["features"]]
        nxt = [link["href"] for link in page["links"] if link["rel"] == "next"]
        if not nxt:
            break
        assert "cursor=" in nxt[0] and "offset=" not in nxt[0]
        url = nxt[0]
    assert len(ids) == len(set(ids)) == entry["feature_count"]
    assert ids == sorted(ids)


def test_number_matched_is_exact_or_absent(api: str, manifest: list[dict]) -> None:
    d = manifest[0]["district_code"]
    whole = get(f"{api}/collections/parcels-{d}/items", limit=10).json()
    assert whole["numberMatched"] == manifest[0]["feature_count"]
    national = get(f"{api}/collections/parcels/items", limit=10).json()
    assert national["numberMatched"] == sum(e["feature_count"] for e in manifest)
    short = get(f"{api}/collections/parcels-{d}/items", limit=10000, land_use="TMD").json()
    assert short["numberMatched"] == short["numberReturned"] > 0
    later = get(f"{api}/collections/parcels-{d}/items", limit=10, cursor=5).json()
    assert later["numberMatched"] == manifest[0]["feature_count"]  # kept by the loader
    filtered = get(f"{api}/collections/parcels-{d}/items", limit=10, cursor=5,
                   land_use="ODT").json()
    assert "numberMatched" not in filtered  # a filtered count is not redone on every page
    hits = get(f"{api}/collections/parcels-{d}/items", land_use="TMD", resulttype="hits")
    assert hits.json()["numberMatched"] == short["numberMatched"]


def test_sorted_pages_continue_by_offset(api: str) -> None:
    page = get(f"{api}/collections/parcels-001/items", limit=5, sortby="-area_m2").json()
    nxt = next(link["href"] for link in page["links"] if link["rel"] == "next")
    assert "offset=5" in nxt and "cursor" not in nxt
    second = httpx.get(nxt, timeout=60).json()
    areas = [f["properties"]["area_m2"] for f in page["features"] + second["features"]]
    assert areas == sorted(areas, reverse=True)


def test_spatial_cql2_and_property_selection(api: str) -> None:
    poly = "POLYGON((105.82 21.03,105.83 21.03,105.83 21.04,105.82 21.04,105.82 21.03))"
    spatial = get(f"{api}/collections/parcels-001/items", limit=1000,
                  filter=f"S_INTERSECTS(geom,{poly})").json()
    by_bbox = get(f"{api}/collections/parcels-001/items", limit=1000,
                  bbox="105.82,21.03,105.83,21.04").json()
    assert {f["id"] for f in spatial["features"]} == {f["id"] for f in by_bbox["features"]}
    slim = get(f"{api}/collections/parcels-001/items", limit=3, properties="parcel_ref",
               skipGeometry="true").json()
    assert all(f["geometry"] is None and list(f["properties"]) == ["parcel_ref"]
               for f in slim["features"])


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "x"}, {"cursor": "-1"}, {"bbox": "1,2,3"},
    {"bbox": "5,5,1,1"}, {"crs": "http://www.opengis.net/def/crs/EPSG/0/9999"},
    {"filter": "area_m2 >"}, {"filter-lang": "cql2-json", "filter": "{}"},
    {"sortby": "nope"}, {"properties": "owner_name"}, {"surprise": "1"},
    {"sheet_no": "one"}, {"filter": "owner_name = 'x'"},
], ids=lambda p: ",".join(p))
def test_bad_parameters_get_400_without_sql(api: str, params: dict) -> None:
    r = get(f"{api}/collections/parcels-001/items", **params)
    assert r.status_code == 400, r.text[:300]
    body = r.json()
    assert body["code"] == "InvalidParameterValue"
    assert "SELECT" not in body["description"] and "publish." not in body["description"]


def test_limit_is_clamped(api: str, manifest: list[dict]) -> None:
    page = get(f"{api}/collections/parcels/items", limit=10**9, skipGeometry="true").json()
    total = sum(e["feature_count"] for e in manifest)
    assert total > 10000  # the sample towns: more parcels than one page may carry
    assert page["numberReturned"] == 10000  # LIS_PAGE_LIMIT_MAX's default
    assert any(link["rel"] == "next" for link in page["links"])
    assert get(f"{api}/collections/land-use-types/items", limit=10**9).status_code == 200


def test_html_is_still_pygeoapi(api: str) -> None:
    r = get(f"{api}/collections/parcels-001/items", f="html", limit=5)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]


def test_conformance_claims_only_the_writes_offered(api: str) -> None:
    classes = get(f"{api}/conformance", f="json").json()["conformsTo"]
    # Part 4 create/replace/delete on parcels-<district>
    # (cadastre/tests/test_cadastre_writes.py), no more
    assert [c for c in classes if "features-4" in c] == [
        "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete"]
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in classes
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt" in classes
    assert get(f"{api}/conformance", f="html").headers["content-type"].startswith("text/html")


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_vector_tiles_decode_in_gdal(api: str, api_db: Engine, tmp_path: Path) -> None:
    z = 16
    with api_db.connect() as conn:  # a tile over a Ba Đình lot
        lon, lat = conn.execute(sa.text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c "
            "FROM publish.parcels WHERE district_code = '001' ORDER BY id LIMIT 1) p")).one()
    x, y = _tile_of(lon, lat, z)
    url = f"{api}/collections/parcels-001/tiles/WebMercatorQuad/{z}/{y}/{x}"
    r = httpx.get(url, timeout=60)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert "max-age" in r.headers["cache-control"]
    tile = tmp_path / "t.mvt"
    tile.write_bytes(r.content)
    out = subprocess.run(["ogrinfo", "-so", "-oo", f"Z={z}", "-oo", f"X={x}", "-oo", f"Y={y}",
                          str(tile), "parcels-001"], capture_output=True, text=True,
                         check=True).stdout
    count = int(out.split("Feature Count: ")[1].split()[0])
    # every parcel of the tile, and none beyond its buffer (64 of 4096 units a side,
    # where ST_AsMVTGeom keeps the neighbours' edges)
    in_bbox = _parcels_in_tile(api, z, x, y)
    in_buffer = _parcels_in_tile(api, z, x, y, buffer=64 / 4096)
    assert 0 < in_bbox <= count <= in_buffer
    again = httpx.get(url, headers={"If-None-Match": r.headers["etag"]}, timeout=60)
    assert again.status_code == 304


def _parcels_in_tile(api: str, z: int, x: int, y: int, buffer: float = 0.0) -> int:
    """Parcels in tile (z, x, y), its edges moved out by ``buffer`` of its size."""
    n = 2 ** z
    lon0, lon1 = (x - buffer) / n * 360 - 180, (x + 1 + buffer) / n * 360 - 180
    lat1 = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y - buffer) / n))))
    lat0 = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 1 + buffer) / n))))
    page = get(f"{api}/collections/parcels-001/items", limit=10000, skipGeometry="true",
               bbox=f"{lon0},{lat0},{lon1},{lat1}").json()
    return page["numberReturned"]


def test_tiles_below_min_zoom_and_outside_are_handled(api: str) -> None:
    # below the parcels' min_zoom the tile holds the communes' summaries
    # (tests/test_tiles_lowzoom.py); away from the data it is empty
    x, y = _tile_of(105.83, 21.035, 10)
    low = httpx.get(f"{api}/collections/parcels-001/tiles/WebMercatorQuad/10/{y}/{x}",
                    timeout=60)
    assert low.status_code == 200
    x, y = _tile_of(0.0, 0.0, 10)
    empty = httpx.get(f"{api}/collections/parcels-001/tiles/WebMercatorQuad/10/{y}/{x}",
                      timeout=60)
    assert empty.status_code == 204
    bad = httpx.get(f"{api}/collections/parcels-001/tiles/WebMercatorQuad/3/99/99", timeout=60)
    assert bad.status_code == 400
    meta = get(f"{api}/collections/parcels-001/tiles/WebMercatorQuad").json()
    assert any(link["rel"] == "item" for link in meta["links"])


def test_exhausted_pool_answers_503_with_retry_after(api_db_url: URL) -> None:
    """One connection, held by someone else: the next request gets 503 at once."""
    engine = make_engine(role_url(api_db_url, PUBLIC), public=True, pool_size=1, pool_timeout=0.5)
    col = collection(PARCELS, title="t", description="t", bbox=[0, 0, 1, 1], crs=[],
                     fixed={"district_code": "001"})
    service = FeaturesService(engine, collections_from_config(
        {"resources": {"parcels-001": col}}), "http://x", 10, 100)
    try:
        with engine.connect() as held:
            held.execute(sa.text("SELECT 1"))
            response = service.items(service.collections["parcels-001"], {"limit": "5"})
        assert response.status_code == 503
        assert response.headers["retry-after"] == "2"
        assert service.items(service.collections["parcels-001"],
                             {"limit": "5"}).status_code == 200
    finally:
        engine.dispose()


def test_filtered_first_page_counts_up_to_the_cap(api_db_url: URL,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A filtered first page counts its matches in the same statement, up to COUNT_CAP;
    beyond it numberMatched is omitted (the count stopped); resulttype=hits always counts."""
    import json

    from landplatform.publish import features_api

    engine = make_engine(role_url(api_db_url, PUBLIC), public=True)
    col = collection(PARCELS, title="t", description="t", bbox=[0, 0, 1, 1], crs=[])
    service = FeaturesService(engine, collections_from_config(
        {"resources": {"parcels": col}}), "http://x", 10, 100)
    parcels = service.collections["parcels"]
    query = {"filter": "area_m2 > 0 AND district_code = '001'", "limit": "5"}
    try:
        with engine.connect() as conn:  # a district: fewer than the cap (20,000)
            total = conn.execute(sa.text(
                "SELECT count(*) FROM publish.parcels WHERE area_m2 > 0 "
                "AND district_code = '001'")).scalar_one()
        assert total > 1000
        body = json.loads(service.items(parcels, query).body)
        assert body["numberMatched"] == total and body["numberReturned"] == 5
        monkeypatch.setattr(features_api, "COUNT_CAP", total)  # exactly at the cap: exact
        assert json.loads(service.items(parcels, query).body)["numberMatched"] == total
        monkeypatch.setattr(features_api, "COUNT_CAP", total - 1)  # one more: omitted
        body = json.loads(service.items(parcels, query).body)
        assert "numberMatched" not in body and body["numberReturned"] == 5
        hits = json.loads(service.items(parcels, {**query, "resulttype": "hits"}).body)
        assert hits["numberMatched"] == total
        second = json.loads(service.items(parcels, {**query, "offset": "5"}).body)
        assert "numberMatched" not in second  # later pages do not count again
    finally:
        engine.dispose()


PAGE_SHAPES = [
    ({"filter": "land_use = 'ODT' AND area_m2 > 100", "limit": "50"}, {"count_cap": 20_000}),
    ({"filter": "land_use = 'ODT' OR land_use = 'ONT'", "limit": "7"}, {"after": 100}),
    ({"bbox": "105.80,21.00,105.86,21.06", "limit": "40",
      "crs": "http://www.opengis.net/def/crs/EPSG/0/3857"}, {}),
    ({"sortby": "-area_m2", "properties": "area_m2,land_use", "skipGeometry": "true",
      "limit": "20"}, {"offset": 40}),
    ({"filter": "S_INTERSECTS(geometry, POLYGON((105.80 21.00, 105.86 21.00, 105.86 21.06, "
               "105.80 21.06, 105.80 21.00)))", "limit": "5"}, {"count_cap": 20_000}),
    ({"district_code": "001", "limit": "3"}, {"after": 0, "count_cap": 20_000}),
]


@pytest.mark.parametrize(("params", "paging"), PAGE_SHAPES)
def test_page_templates_answer_as_the_whole_statement(api_db_url: URL, params: dict,
                                                      paging: dict) -> None:
    """The per-shape template plus a per-request WHERE (what the API runs) gives the same
    row as the whole statement built and compiled by SQLAlchemy, twice (cached)."""
    engine = make_engine(role_url(api_db_url, PUBLIC), public=True)
    col = collection(PARCELS, title="t", description="t", bbox=[0, 0, 1, 1],
                     crs=["http://www.opengis.net/def/crs/EPSG/0/3857"])
    service = FeaturesService(engine, collections_from_config(
        {"resources": {"parcels": col}}), "http://x", 10, 100)
    try:
        fq, opts = service.parse(service.collections["parcels"], params)
        with engine.connect() as conn:
            whole = conn.execute(fq.page_stmt(opts["limit"], **paging)).one()
            for _ in range(2):
                sql, values = fq.page_sql(engine.dialect, opts["limit"], **paging)
                assert conn.exec_driver_sql(sql, values).one() == whole
        assert whole[1] > 0  # every shape finds parcels in the samples
    finally:
        engine.dispose()


def test_or_filter_does_not_swallow_the_cursor(api: str) -> None:
    """A top-level OR in a filter stays inside its parentheses when the page continues
    after a cursor: every feature is past the cursor and matches the filter."""
    query = {"filter": "land_use = 'ODT' OR land_use = 'ONT'", "limit": "20"}
    first = get(f"{api}/collections/parcels/items", **query).json()
    cursor = max(f["id"] for f in first["features"])
    page = get(f"{api}/collections/parcels/items", **query, cursor=cursor).json()
    assert page["numberReturned"] == 20
    assert all(f["id"] > cursor for f in page["features"])
    assert {f["properties"]["land_use"] for f in page["features"]} <= {"ODT", "ONT"}


def test_land_use_counts_in_a_district_read_only_the_index(api_db_url: URL) -> None:
    """Counting a district's current parcels of one land-use code (a filtered first page's
    numberMatched, the land statistics) is answered from parcel_district_land_use_idx."""
    import json

    engine = make_engine(role_url(api_db_url, PUBLIC), public=True)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SET enable_seqscan = off"))
            plan = conn.execute(sa.text(
                "EXPLAIN (FORMAT JSON) SELECT count(*) FROM publish.parcels "
                "WHERE district_code = '001' AND land_use = 'ODT' AND area_m2 > 100"
            )).scalar_one()
            conn.execute(sa.text("RESET enable_seqscan"))
    finally:
        engine.dispose()
    # the table is partitioned by district (migration 0020): the plan names the index of
    # the district's partition, one of the partitions of parcel_district_land_use_idx
    admin = make_engine(api_db_url)
    try:
        with admin.connect() as conn:
            indexes = set(conn.execute(sa.text(
                "SELECT c.relname FROM pg_partition_tree("
                "CAST('cadastre.parcel_district_land_use_idx' AS regclass)) t "
                "JOIN pg_class c ON c.oid = t.relid")).scalars())
    finally:
        admin.dispose()
    text = json.dumps(plan)
    assert "parcel_district_land_use_idx" in indexes
    assert any(f'"{name}"' in text for name in indexes), text[:500]
    assert '"Index Only Scan"' in text or '"Bitmap Index Scan"' in text


def test_tile_cache_serves_fresh_then_stale_then_nothing() -> None:
    import time

    from landplatform.publish.tiles import Tile, TileCache

    cache = TileCache(ttl=0.2, stale=0.3)
    tile = Tile.encode(b"mvt", False)
    cache.put(("c", 14, 1, 2), tile)
    assert cache.get(("c", 14, 1, 2)) == (tile, True)
    time.sleep(0.25)
    assert cache.get(("c", 14, 1, 2)) == (tile, False)  # stale: served, refreshed
    time.sleep(0.3)
    assert cache.get(("c", 14, 1, 2)) is None


def test_concurrent_requests_for_a_tile_share_one_build(api_db_url: URL) -> None:
    """Five requests for the same uncached tile at once run ONE ST_AsMVT statement and
    all get its bytes; the tile is then in the cache, fresh."""
    import asyncio

    from landplatform.publish.tiles import TileBuilder, TileCache

    class CountingService(FeaturesService):
        statements = 0

        def execute(self, fn):  # noqa: ANN001, ANN202 - the real database, counted
            self.statements += 1
            return super().execute(fn)

    engine = make_engine(role_url(api_db_url, PUBLIC), public=True)
    col = collection(PARCELS, title="t", description="t", bbox=[0, 0, 1, 1], crs=[],
                     fixed={"district_code": "001"})
    service = CountingService(engine, collections_from_config(
        {"resources": {"parcels-001": col}}), "http://x", 10, 100)
    parcels = service.collections["parcels-001"]
    cache = TileCache()
    builder = TileBuilder(service, cache)
    x, y = _tile_of(105.83, 21.035, 14)

    async def five_at_once() -> list:
        return await asyncio.gather(*(asyncio.shield(builder.build(parcels, 14, x, y))
                                      for _ in range(5)))
    try:
        results = asyncio.run(five_at_once())
    finally:
        engine.dispose()
    assert service.statements == 1
    assert len(set(results)) == 1 and results[0].data  # the same, non-empty tile
    assert cache.get((parcels.id, 14, x, y)) == (results[0], True)
