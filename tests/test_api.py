"""The published API over real HTTP: collections generated per district, items, look-ups,
HTML pages, CRS output, health."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine


def get(url: str, **params) -> httpx.Response:  # noqa: ANN003
    return httpx.get(url, params=params, timeout=60)


def test_health(api: str) -> None:
    body = get(f"{api}/health").json()
    assert body["status"] == "ok" and body["schema"] == body["expected_schema"]


def test_collections_are_generated_per_district(api: str, manifest: list[dict]) -> None:
    ids = {c["id"] for c in get(f"{api}/collections", f="json").json()["collections"]}
    # every sample district has parcels, a plan, a price table and a valuation
    per_district = ("parcels", "planning-zones", "land-prices", "parcel-values", "price-surface")
    expected = {f"{kind}-{e['district_code']}" for e in manifest for kind in per_district}
    national = {"parcels", "parcel-changes", "land-use-types", "admin-units",
                "planning-zones", "plans", "land-prices", "parcel-values"}
    # and parcels per province since the 2025 reform (Hà Nội and Đà Nẵng kept their codes)
    provinces = {f"parcels-p{e['province_code']}" for e in manifest}
    assert ids == expected | national | provinces


@pytest.mark.parametrize("fmt", ["json", "html"])
def test_landing_and_conformance(api: str, fmt: str) -> None:
    for path in ("/", "/conformance", "/collections", "/collections/parcels-001",
                 "/collections/parcels-001/items", "/collections/parcels-001/queryables"):
        r = get(f"{api}{path}", f=fmt)
        assert r.status_code == 200, (path, r.text[:300])
        assert ("html" in r.headers["content-type"]) == (fmt == "html")


def test_district_counts_match_sample_files(api: str, manifest: list[dict]) -> None:
    for entry in manifest:
        d = entry["district_code"]
        body = get(f"{api}/collections/parcels-{d}/items", f="json", resulttype="hits").json()
        assert body["numberMatched"] == entry["feature_count"]
        national = get(f"{api}/collections/parcels/items", f="json", district_code=d,
                       resulttype="hits").json()
        assert national["numberMatched"] == entry["feature_count"]


def test_items_page_and_item(api: str) -> None:
    page = get(f"{api}/collections/parcels-492/items", f="json", limit=50).json()
    assert page["numberReturned"] == 50 and page["numberMatched"] > 50
    assert any(link["rel"] == "next" for link in page["links"])
    feature = page["features"][0]
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert {p["district_code"] for p in (f["properties"] for f in page["features"])} == {"492"}
    one = get(f"{api}/collections/parcels-492/items/{feature['id']}", f="json").json()
    assert one["id"] == feature["id"] and one["properties"] == feature["properties"]
    # an item of another district is not in this district's collection
    other = get(f"{api}/collections/parcels-001/items", f="json", limit=1).json()
    missing = get(f"{api}/collections/parcels-492/items/{other['features'][0]['id']}")
    assert missing.status_code == 404
    assert get(f"{api}/collections/parcels-492/items/not-a-number").status_code == 404


def test_bbox_filter_and_sort(api: str, api_db: Engine) -> None:
    with api_db.connect() as conn:  # about 200 m around a Ba Đình lot
        x, y = conn.execute(text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c "
            "FROM publish.parcels WHERE district_code = '001' ORDER BY id LIMIT 1) p")).one()
    page = get(f"{api}/collections/parcels/items", f="json", limit=1000,
               bbox=f"{x - 0.001},{y - 0.001},{x + 0.001},{y + 0.001}",
               sortby="-area_m2").json()
    assert 0 < page["numberReturned"] < 1000
    areas = [f["properties"]["area_m2"] for f in page["features"]]
    assert areas == sorted(areas, reverse=True)
    assert {f["properties"]["district_code"] for f in page["features"]} <= {"001", "003"}


def test_cql2_filter(api: str, api_db: Engine) -> None:
    with api_db.connect() as conn:  # the larger half of the district's residential lots
        median = float(conn.execute(text(
            "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY area_m2) FROM publish.parcels "
            "WHERE district_code = '001' AND land_use = 'ODT'")).scalar_one())
    page = get(f"{api}/collections/parcels-001/items", f="json", limit=5000,
               filter=f"land_use = 'ODT' AND area_m2 > {median}").json()
    assert page["numberReturned"] > 0
    assert all(f["properties"]["land_use"] == "ODT" and f["properties"]["area_m2"] > median
               for f in page["features"])
    bad = get(f"{api}/collections/parcels-001/items", filter="land_use = = 'ODT'")
    assert bad.status_code == 400


def test_parcel_by_commune_sheet_number(api: str, api_db: Engine) -> None:
    with api_db.connect() as conn:
        uid, commune, sheet, number = conn.execute(text(
            "SELECT uid, commune_code, sheet_no, parcel_no FROM cadastre.parcel "
            "WHERE district_code = '003' ORDER BY uid LIMIT 1")).one()
    r = get(f"{api}/cadastre/parcels/{commune}/{sheet}/{number}")
    assert r.status_code == 200
    feature = r.json()
    assert feature["id"] == uid
    assert feature["properties"]["parcel_ref"] == f"{commune}.{sheet}.{number}"
    assert any(link["href"].endswith("/collections/parcels-003") for link in feature["links"])
    items = get(f"{api}/collections/parcels/items", f="json", commune_code=commune,
                sheet_no=sheet, parcel_no=number).json()
    assert [f["id"] for f in items["features"]] == [uid]
    assert get(f"{api}/cadastre/parcels/{commune}/{sheet}/99999").status_code == 404
    assert get(f"{api}/cadastre/parcels/1/{sheet}/{number}").status_code == 422


def test_output_in_vn2000_tm3(api: str) -> None:
    """OGC API Features Part 2: parcels of Ba Đình in VN-2000 / TM-3 105° metres."""
    r = get(f"{api}/collections/parcels-001/items", f="json", limit=1,
            crs="http://www.opengis.net/def/crs/EPSG/0/5897")
    assert r.status_code == 200, r.text[:300]
    assert "EPSG/0/5897" in r.headers["content-crs"]
    x, y = r.json()["features"][0]["geometry"]["coordinates"][0][0][0]
    assert 570_000 < x < 590_000 and 2_320_000 < y < 2_335_000  # easting, northing
    latlon = get(f"{api}/collections/parcels-001/items", f="json", limit=1,
                 crs="http://www.opengis.net/def/crs/EPSG/0/4326").json()
    lat, lon = latlon["features"][0]["geometry"]["coordinates"][0][0][0]
    assert 21 < lat < 21.1 and 105.8 < lon < 105.9  # EPSG:4326 is latitude first


def test_code_lists_are_published(api: str) -> None:
    codes = get(f"{api}/collections/land-use-types/items", f="json", limit=500).json()
    by_code = {f["properties"]["code"]: f["properties"] for f in codes["features"]}
    assert by_code["BHK"]["replaced_by"] == "HNK" and by_code["ODT"]["group_code"] == "PNN"
    units = get(f"{api}/collections/admin-units/items", f="json", code="001",
                level="district").json()
    assert units["features"][0]["properties"]["name"] == "Quận Ba Đình"
    assert units["features"][0]["geometry"]["type"] == "MultiPolygon"


def test_bad_parameters_are_4xx(api: str) -> None:
    for params in ({"limit": "abc"}, {"bbox": "1,2,3"}, {"sheet_no": "x"},
                   {"sortby": "nope"}, {"properties": "owner_name"}):
        r = get(f"{api}/collections/parcels-001/items", f="json", **params)
        assert 400 <= r.status_code < 500, (params, r.status_code, r.text[:200])
