"""Valuation over real HTTP: land-prices / parcel-values collections, the parcel-valuation
process against the stored run, the price surface as an OGC API coverage (bbox window
checked against the COG read with rasterio; GDAL reads the COG), and no owner data."""

from __future__ import annotations

import json
import math
import subprocess
from decimal import Decimal
from pathlib import Path

import httpx
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.features import geometry_mask
from rasterio.io import MemoryFile
from rasterio.windows import Window, from_bounds
from sqlalchemy import text
from sqlalchemy.engine import Engine

from landplatform.publish.coverage_guard import MAX_JSON_CELLS, CoverageQueryError, checked_query
from support import SAMPLES, found_in, restricted_values

PRICES = json.loads((SAMPLES / "prices" / "manifest.json").read_text(encoding="utf-8"))


def get(url: str, **params) -> httpx.Response:  # noqa: ANN003
    return httpx.get(url, params=params, timeout=120)


def execute(api: str, inputs: dict) -> httpx.Response:
    return httpx.post(f"{api}/processes/parcel-valuation/execution",
                      json={"inputs": inputs}, timeout=120)


def all_features(url: str) -> list[dict]:
    features, next_url = [], f"{url}?f=json&limit=10000"
    while next_url:
        page = httpx.get(next_url, timeout=120).json()
        features += page["features"]
        link = next((lk for lk in page.get("links", []) if lk["rel"] == "next"), None)
        next_url = link["href"] if link and page["features"] else None
    return features


def test_collections_exist_with_counts(api: str, manifest: list[dict]) -> None:
    ids = {c["id"] for c in get(f"{api}/collections", f="json").json()["collections"]}
    assert {"land-prices", "parcel-values"} <= ids
    for entry in manifest:
        d = entry["district_code"]
        assert {f"land-prices-{d}", f"parcel-values-{d}", f"price-surface-{d}"} <= ids
        values = all_features(f"{api}/collections/parcel-values-{d}/items")
        assert len(values) == entry["feature_count"]
        priced = [f for f in values if f["properties"]["value"] is not None]
        assert priced and all(f["properties"]["district_code"] == d for f in values)
        # a district's collection: the segments drawn in it, once per urban sheet
        segments = all_features(f"{api}/collections/land-prices-{d}/items")
        land_types = set(PRICES["roads"][d][0]["vt1"])
        assert len(segments) == len(PRICES["roads"][d]) * len(land_types)
        assert {f["properties"]["land_type"] for f in segments} == land_types
        assert all(f["geometry"]["type"] == "MultiLineString" for f in segments)
    # nationally every urban row, drawn or not (the rows only the table names, the
    # remaining roads and the unnamed roads by cross-section of each ward)
    national = get(f"{api}/collections/land-prices/items", f="json", land_type="ODT",
                   limit=1000).json()
    rows = [d["urban_rows"] for d in PRICES["deliveries"] if d["format"] == "xlsx"]
    assert len(national["features"]) == sum(sum(r.values()) for r in rows)
    kinds = {f["properties"]["kind"] for f in national["features"]}
    assert kinds == {"road", "remaining", "cross_section"}


def test_unpriced_parts_say_why_in_json_and_csv(api: str) -> None:
    """Urban land no row of the table prices is unpriced with a reason code, in the
    parcel-values features and in their CSV."""
    page = get(f"{api}/collections/parcel-values-001/items", f="json",
               unpriced_reason="urban_no_row", limit=5).json()
    assert page["features"]
    for feature in page["features"]:
        props = feature["properties"]
        assert props["unpriced_reason"] == "urban_no_row" and not props["fully_valued"]
        parts = json.loads(props["explanation"])
        assert any(p.get("reason_code") == "urban_no_row" for p in parts)
    csv_text = get(f"{api}/collections/parcel-values-001/items", f="csv",
                   unpriced_reason="urban_no_row", limit=5).text
    header, first = csv_text.splitlines()[:2]
    assert "unpriced_reason" in header.split(",") and "urban_no_row" in first


def test_land_prices_carry_the_workbook_numbers(api: str) -> None:
    road = PRICES["roads"]["492"][0]
    page = get(f"{api}/collections/land-prices-492/items", f="json", land_type="TMD",
               road_name=road["road_name"], limit=10).json()
    found = [f["properties"] for f in page["features"]
             if f["properties"]["from_desc"] == road["from_desc"]]
    assert [p["vt1"] for p in found] == [road["vt1"]["TMD"]]


@pytest.fixture(scope="module")
def cases(api_db: Engine) -> dict[str, dict]:
    """Parts of the latest runs, one of each kind, to ask the process about."""
    wanted = {
        "corner": "v.adjustments @> '[{\"rule\": \"two_frontages\"}]'",
        "k": "v.adjustments @> '[{\"rule\": \"coefficient_k\"}]'",
        "zone": "v.basis = 'zone'",
        "area": "v.basis = 'area'",
        "unpriced": "v.basis IS NULL",
        "multipart": "v.seq = 2",
    }
    out = {}
    with api_db.connect() as conn:
        for name, condition in wanted.items():
            row = conn.execute(text(f"""
                SELECT v.district_code, v.parcel_uid, r.on_date, p.commune_code, p.sheet_no,
                       p.parcel_no
                  FROM valuation.parcel_value v
                  JOIN valuation.valuation_run r USING (run_id)
                  JOIN cadastre.parcel p ON p.uid = v.parcel_uid
                 WHERE r.is_latest AND {condition}
                 ORDER BY v.parcel_uid LIMIT 1""")).mappings().one()
            parts = conn.execute(text("""
                SELECT v.seq, v.basis, v.position, v.unit_price, v.value, v.explanation
                  FROM valuation.parcel_value v JOIN valuation.valuation_run r USING (run_id)
                 WHERE r.is_latest AND v.parcel_uid = :p ORDER BY v.seq"""),
                {"p": row["parcel_uid"]}).mappings().all()
            out[name] = {**row, "parts": [dict(p) for p in parts]}
    return out


def _number(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def test_process_returns_the_stored_run(api: str, cases: dict) -> None:
    for name, case in cases.items():
        r = execute(api, {"parcel_id": case["parcel_uid"], "date": str(case["on_date"])})
        assert r.status_code == 200, (name, r.text)
        body = r.json()
        parts = body["parts"]
        assert [p["seq"] for p in parts] == [p["seq"] for p in case["parts"]], name
        for mine, stored in zip(parts, case["parts"], strict=True):
            assert _number(mine.get("value")) == stored["value"], name
            assert _number(mine.get("unit_price")) == stored["unit_price"], name
            assert mine.get("position") == stored["position"], name
            assert mine.get("basis") == stored["basis"], name
            assert mine == json.loads(json.dumps(stored["explanation"])), name
        values = [p["value"] for p in case["parts"] if p["value"] is not None]
        assert _number(body["value"]) == (sum(values) if values else None), name
    by_number = execute(api, {"commune_code": cases["corner"]["commune_code"],
                              "sheet_no": cases["corner"]["sheet_no"],
                              "parcel_no": cases["corner"]["parcel_no"],
                              "date": str(cases["corner"]["on_date"])}).json()
    assert by_number["parcel"]["id"] == cases["corner"]["parcel_uid"]


@pytest.mark.parametrize("inputs", [
    {}, {"parcel_id": "abc"}, {"parcel_id": -3}, {"parcel_id": 10**12},
    {"commune_code": "1", "sheet_no": 1, "parcel_no": 1}, {"parcel_id": 1, "date": "x"},
    {"parcel_id": 1, "date": "1990-01-01"}, {"parcel_id": "1; DROP TABLE x"},
])
def test_process_bad_input_is_4xx(api: str, inputs: dict) -> None:
    r = execute(api, inputs)
    assert 400 <= r.status_code < 500, r.text
    assert "sql" not in r.text.lower() and "psycopg" not in r.text.lower()


def expected_window(src: rasterio.DatasetReader, bbox: tuple[float, ...]
                    ) -> tuple[rasterio.Affine, np.ndarray]:
    """What an OGC API coverage bbox request should return, read straight from the COG: the
    outermost pixels holding the bbox, those whose centre lies outside it as nodata."""
    w = from_bounds(*bbox, transform=src.transform)
    col, row = math.floor(w.col_off), math.floor(w.row_off)
    window = Window(col, row, math.ceil(w.col_off + w.width) - col,
                    math.ceil(w.row_off + w.height) - row)
    values = src.read(1, window=window)
    transform = src.window_transform(window)
    inside = geometry_mask([shapely.box(*bbox)], out_shape=values.shape, transform=transform,
                           invert=True)
    return transform, np.where(inside, values, src.nodata)


def test_coverage_bbox_returns_the_right_window(api: str, api_var_dir: Path) -> None:
    cog = api_var_dir / "coverages" / "price-surface-001.tif"
    meta = get(f"{api}/collections/price-surface-001", f="json").json()
    minx, miny, maxx, maxy = meta["extent"]["spatial"]["bbox"][0]
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    bbox = (cx - 0.003, cy - 0.002, cx + 0.004, cy + 0.001)
    r = get(f"{api}/collections/price-surface-001/coverage", f="GTiff",
            bbox=",".join(map(str, bbox)))
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/tiff")
    with MemoryFile(r.content) as mem, mem.open() as got, rasterio.open(cog) as src:
        assert got.crs == src.crs and got.res == src.res and got.nodata == src.nodata
        transform, expected = expected_window(src, bbox)
        assert got.transform == transform
        actual = got.read(1)
        assert actual.shape == expected.shape and np.array_equal(actual, expected)
        assert (actual > 0).sum() > 1000 and (actual == 0).any()
        # a small bbox as CoverageJSON: the same pixels, nodata as null
        small = (cx, cy, cx + 0.0005, cy + 0.0004)
        _, expected = expected_window(src, small)
    cj = get(f"{api}/collections/price-surface-001/coverage", f="json",
             bbox=",".join(map(str, small))).json()
    assert cj["type"] == "Coverage"
    axes = cj["domain"]["axes"]
    assert (axes["y"]["num"], axes["x"]["num"]) == expected.shape
    values = next(iter(cj["ranges"].values()))["values"]
    assert [0 if v is None else v for v in values] == expected.flatten().tolist()


def inside(geom: shapely.Geometry, margin: float) -> shapely.Point | None:
    """A point of ``geom`` at least ``margin`` (degrees) from its edges: the cell there is
    wholly the parcel's. None for a lot or alley narrower than that."""
    core = geom.buffer(-margin)
    return None if core.is_empty else shapely.point_on_surface(core)


def test_surface_holds_the_parcels_unit_prices(api: str, api_var_dir: Path) -> None:
    """The cell under a parcel holds its unit price, nodata under an unpriced one (roads,
    water). Checked a cell's diagonal inside the parcel: a 3 m lot or 2 m alley may hold
    no whole cell, and a cell at an edge is its neighbour's as often as not."""
    features = all_features(f"{api}/collections/parcel-values-492/items")
    with rasterio.open(api_var_dir / "coverages" / "price-surface-492.tif") as src:
        band = src.read(1)
        margin = math.hypot(*src.res)
        checked = {True: 0, False: 0}
        for f in features:
            priced = f["properties"]["unit_price"] is not None
            point = inside(shapely.geometry.shape(f["geometry"]), margin)
            if point is None or checked[priced] >= 300:
                continue
            row, col = src.index(point.x, point.y)  # off the raster: nodata, not a wrap
            held = band[row, col] if 0 <= row < src.height and 0 <= col < src.width else 0
            want = f["properties"]["unit_price"] if priced else src.nodata
            assert held == want, f["id"]
            checked[priced] += 1
    assert src.nodata == 0 and checked[True] >= 300 and checked[False] >= 20, checked


def test_gdal_reads_the_cog(api: str, api_var_dir: Path, tmp_path: Path) -> None:
    cog = api_var_dir / "coverages" / "price-surface-003.tif"
    out = subprocess.run(["gdalinfo", str(cog)], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    assert "Driver: GTiff/GeoTIFF" in out and "LAYOUT=COG" in out
    assert "COMPRESSION=DEFLATE" in out and "NoData Value=0" in out and "EPSG\",4326" in out
    assert "Overviews:" in out
    with rasterio.open(cog) as src:  # a window in the middle of the town
        cx, cy = (src.bounds.left + src.bounds.right) / 2, (src.bounds.bottom + src.bounds.top) / 2
    r = get(f"{api}/collections/price-surface-003/coverage", f="GTiff",
            bbox=f"{cx - 0.0025},{cy - 0.0025},{cx + 0.0025},{cy + 0.0025}")
    assert r.status_code == 200, r.text
    (tmp_path / "window.tif").write_bytes(r.content)
    window = subprocess.run(["gdalinfo", "-stats", str(tmp_path / "window.tif")],
                            capture_output=True, text=True, check=True, timeout=60).stdout
    assert "Size is" in window and "STATISTICS_MAXIMUM" in window


def test_map_preview_is_linked(api: str) -> None:
    meta = get(f"{api}/collections/price-surface-491", f="json").json()
    link = next(lk for lk in meta["links"] if lk.get("type") == "image/png")
    assert "/coverage" in link["href"]
    r = httpx.get(link["href"].replace(link["href"].split("/valuation")[0], api), timeout=60)
    assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert get(f"{api}/valuation/coverage/price-surface-999.png").status_code == 404
    assert get(f"{api}/valuation/coverage/price-surface-..%2F.png").status_code == 404


def test_no_owner_data_in_valuation_responses(api: str, manifest: list[dict],
                                              cases: dict) -> None:
    secrets = restricted_values(manifest)
    assert len(secrets) > 1000
    bodies = [get(f"{api}/processes/parcel-valuation", f="json").text]
    for cid in ("land-prices", "parcel-values", "parcel-values-001", "price-surface-001"):
        bodies.append(get(f"{api}/collections/{cid}", f="json").text)
    for entry in manifest:
        bodies.append(get(f"{api}/collections/parcel-values-{entry['district_code']}/items",
                          f="json", limit=10000).text)
    bodies.append(get(f"{api}/collections/land-prices/items", f="json", limit=10000).text)
    for case in cases.values():
        bodies.append(execute(api, {"parcel_id": case["parcel_uid"]}).text)
    everything = "\n".join(bodies)
    assert "explanation" in everything and "unit_price" in everything
    assert not found_in(secrets, everything)
    for name in ("owner", "full_name", "id_number", "certificate", "tenchu", "so_cccd"):
        assert name not in everything.lower(), name


def test_large_surface_as_coveragejson_is_refused_but_geotiff_is_served(
        api: str, tmp_path: Path) -> None:
    """CoverageJSON is built cell by cell in Python: a window past the limit is a 400 that
    says what to do instead, not a request that ties up the server (schemathesis found
    it). The sample towns' surfaces are within it (a few hundred cells a side); a district
    at 2 m can be thousands a side, so the guard is shown on a real COG of that size."""
    r = get(f"{api}/collections/price-surface-003/coverage", f="json")
    assert r.status_code == 200 and r.json()["type"] == "Coverage"
    big = tmp_path / "big.tif"
    side = math.isqrt(MAX_JSON_CELLS) + 100
    with rasterio.open(big, "w", driver="COG", width=side, height=side, count=1,
                       dtype="uint32", crs="EPSG:4326", nodata=0,
                       transform=rasterio.transform.from_origin(105.8, 21.1, 2e-5, 2e-5)
                       ) as dst:
        dst.write(np.ones((1, side, side), dtype="uint32"))
    for params in ([("f", "json")], [("properties", "1,1,1")]):  # the default is JSON too
        with pytest.raises(CoverageQueryError) as refused:
            checked_query(params, str(big))
        assert "f=GTiff" in str(refused.value) and "bbox" in str(refused.value)
    assert checked_query([("f", "GTiff")], str(big)) == [("f", "GTiff")]
    assert checked_query([("f", "json"), ("bbox", "105.8,21.09,105.801,21.091")], str(big))
    r = get(f"{api}/collections/price-surface-003/coverage", f="GTiff")
    assert r.status_code == 200 and r.content[:4] in (b"II*\x00", b"MM\x00*")
    r = get(f"{api}/collections/price-surface-003/coverage", bbox="0,0,1,1,2,3")
    assert r.status_code == 400 and "4" in r.json()["description"]
    r = get(f"{api}/collections/price-surface-003/coverage", bbox="105.8,21.0,105.9,21.1",
            **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/3857"})
    assert r.status_code == 400
