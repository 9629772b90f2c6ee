"""Vector tiles as OGC API Tiles clients use them: gzip on request (compressed once, its own
ETag, Vary), the collection document links its tilesets, and the tileset metadata says
which tiles exist (``tileMatrixSetLimits`` from the collection's extent and zooms)."""

from __future__ import annotations

import gzip
import math
import re
import shutil
import subprocess

import httpx
import pytest

from landplatform.publish.tiles import MVT, accepts_gzip, matches

TILESETS = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
TMS = "WebMercatorQuad"


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def _parcel_tile(api: str, cid: str, z: int) -> str:
    """The URL of the z tile over the first parcel of ``cid``."""
    f = httpx.get(f"{api}/collections/{cid}/items", params={"limit": 1},
                  timeout=60).json()["features"][0]
    lon, lat = f["geometry"]["coordinates"][0][0][0]
    x, y = _tile_of(lon, lat, z)
    return f"{api}/collections/{cid}/tiles/{TMS}/{z}/{y}/{x}"


def _raw(url: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """The response and its body exactly as sent (httpx would decode gzip)."""
    with httpx.Client(timeout=120) as client, client.stream(
            "GET", url, headers=headers) as r:
        return r, b"".join(r.iter_raw())


@pytest.mark.parametrize("z", [12, 16])
def test_gzip_when_asked_identity_otherwise(api: str, z: int) -> None:
    url = _parcel_tile(api, "parcels-001", z)
    plain, plain_body = _raw(url, **{"Accept-Encoding": "identity"})
    packed, packed_body = _raw(url, **{"Accept-Encoding": "gzip, deflate, br"})
    assert plain.status_code == packed.status_code == 200
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in packed.headers["vary"].lower()
    assert "accept-encoding" in plain.headers["vary"].lower()
    assert gzip.decompress(packed_body) == plain_body
    assert len(packed_body) < len(plain_body)
    assert int(packed.headers["content-length"]) == len(packed_body)
    assert packed.headers["etag"] != plain.headers["etag"]  # different bytes
    # each representation revalidates with its own ETag
    for enc, etag in (("gzip", packed.headers["etag"]), ("identity", plain.headers["etag"])):
        again = httpx.get(url, timeout=60, headers={"Accept-Encoding": enc,
                                                   "If-None-Match": etag})
        assert again.status_code == 304 and again.headers["etag"] == etag
    # the other representation's ETag does not validate this one
    cross = httpx.get(url, timeout=60, headers={"Accept-Encoding": "identity",
                                               "If-None-Match": packed.headers["etag"]})
    assert cross.status_code == 200
    refused, _ = _raw(url, **{"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers


def test_accept_encoding_and_if_none_match_parsing() -> None:
    assert accepts_gzip("gzip") and accepts_gzip("br, GZIP;q=0.5") and accepts_gzip("*")
    assert not accepts_gzip("") and not accepts_gzip("identity")
    assert not accepts_gzip("gzip;q=0") and not accepts_gzip("*, gzip;q=0")
    assert matches('W/"a", "b"', '"a"') and matches("*", '"x"')
    assert not matches('"a"', '"b"') and not matches(None, '"a"')


def test_collection_document_links_its_tilesets(api: str) -> None:
    listing = httpx.get(f"{api}/collections", params={"f": "json"}, timeout=60).json()
    linked = {c["id"] for c in listing["collections"]
              if any(link["rel"] == TILESETS for link in c["links"])}
    assert {"parcels", "parcels-001", "planning-zones-001", "admin-units"} <= linked
    assert "plans" not in linked  # no geometry, no tiles
    doc = httpx.get(f"{api}/collections/parcels-001", params={"f": "json"}, timeout=60).json()
    link = next(link for link in doc["links"] if link["rel"] == TILESETS)
    assert link["type"] == "application/json"
    tilesets = httpx.get(link["href"], timeout=60)
    assert tilesets.status_code == 200
    assert tilesets.json()["tilesets"][0]["dataType"] == "vector"


def test_tileset_limits_cover_the_data_and_nothing_else(api: str) -> None:
    meta = httpx.get(f"{api}/collections/parcels-001/tiles/{TMS}", timeout=60).json()
    limits = {int(lim["tileMatrix"]): lim for lim in meta["tileMatrixSetLimits"]}
    assert limits, "tileMatrixSetLimits is empty"
    assert sorted(limits) == list(range(meta["minZoom"], meta["maxZoom"] + 1))
    for z, lim in limits.items():
        assert 0 <= lim["minTileRow"] <= lim["maxTileRow"] < 2 ** z
        assert 0 <= lim["minTileCol"] <= lim["maxTileCol"] < 2 ** z
    # a parcel's tile is inside the limits of its zoom, and a tile beyond them is empty
    # (from z8, where the tile beyond is still inside the matrix)
    assert meta["minZoom"] == 0  # summaries below the parcels' z12 (test_tiles_lowzoom)
    for z in (8, 12, 16):
        url = _parcel_tile(api, "parcels-001", z)
        y, x = map(int, url.rsplit("/", 2)[1:])
        lim = limits[z]
        assert lim["minTileRow"] <= y <= lim["maxTileRow"]
        assert lim["minTileCol"] <= x <= lim["maxTileCol"]
        assert httpx.get(url, timeout=120).status_code == 200
        beyond = (f"{api}/collections/parcels-001/tiles/{TMS}/{z}/"
                  f"{lim['maxTileRow'] + 1}/{lim['maxTileCol'] + 1}")
        assert httpx.get(beyond, timeout=120).status_code == 204
    national = httpx.get(f"{api}/collections/parcels/tiles/{TMS}", timeout=60).json()
    wide = {int(lim["tileMatrix"]): lim for lim in national["tileMatrixSetLimits"]}
    z = 12
    assert wide[z]["minTileCol"] <= limits[z]["minTileCol"] <= limits[z]["maxTileCol"] \
        <= wide[z]["maxTileCol"]


def test_world_crs84_quad_tiles_hold_the_same_parcels(api: str) -> None:
    """The lon/lat tileset (what GDAL's OGC API driver picks) serves the parcels too."""
    from landplatform.publish.tiles import GRIDS

    grid = GRIDS["WorldCRS84Quad"]
    listed = httpx.get(f"{api}/collections/parcels-001/tiles", timeout=60).json()
    assert [t["tileMatrixSetURI"].rsplit("/", 1)[1] for t in listed["tilesets"]] == \
        ["WebMercatorQuad", "WorldCRS84Quad"]
    meta = httpx.get(f"{api}/collections/parcels-001/tiles/WorldCRS84Quad", timeout=60).json()
    assert meta["crs"].endswith("/OGC/1.3/CRS84")
    limits = {int(lim["tileMatrix"]): lim for lim in meta["tileMatrixSetLimits"]}
    f = httpx.get(f"{api}/collections/parcels-001/items", params={"limit": 1},
                  timeout=60).json()["features"][0]
    lon, lat = f["geometry"]["coordinates"][0][0][0]
    z = 15
    x, y = grid.tile_of(lon, lat, z)
    assert limits[z]["minTileCol"] <= x <= limits[z]["maxTileCol"]
    assert limits[z]["minTileRow"] <= y <= limits[z]["maxTileRow"]
    r = httpx.get(f"{api}/collections/parcels-001/tiles/WorldCRS84Quad/{z}/{y}/{x}",
                  timeout=120)
    assert r.status_code == 200 and r.headers["content-type"] == MVT
    # below the parcels' zoom the same tile layer holds the district's summary shape
    assert meta["minZoom"] == 0
    lx, ly = grid.tile_of(lon, lat, 3)
    low = httpx.get(f"{api}/collections/parcels-001/tiles/WorldCRS84Quad/3/{ly}/{lx}",
                    timeout=60)
    assert low.status_code == 200 and low.headers["content-type"] == MVT
    # WorldCRS84Quad has twice as many columns as rows: column 2**z is inside at level z
    # (and 1/0/3, lon 90-180 north, holds the district's summary shape)
    assert httpx.get(f"{api}/collections/parcels-001/tiles/WorldCRS84Quad/1/0/3",
                     timeout=60).status_code == 200
    assert httpx.get(f"{api}/collections/parcels-001/tiles/WorldCRS84Quad/1/0/2",
                     timeout=60).status_code == 204
    assert httpx.get(f"{api}/collections/parcels-001/tiles/WorldCRS84Quad/1/2/0",
                     timeout=60).status_code == 400
    assert httpx.get(f"{api}/collections/parcels-001/tiles/NoSuchGrid", timeout=60) \
        .status_code == 404


def test_tile_matrix_sets_carry_the_1_0_keys_gdal_3_6_reads(api: str) -> None:
    for tms in ("WebMercatorQuad", "WorldCRS84Quad"):
        doc = httpx.get(f"{api}/TileMatrixSets/{tms}", params={"f": "json"}, timeout=60).json()
        assert doc["id"] == doc["identifier"] == tms
        assert doc["supportedCRS"] == doc["crs"]
        assert len(doc["tileMatrix"]) == len(doc["tileMatrices"]) > 10
        first, ref = doc["tileMatrix"][0], doc["tileMatrices"][0]
        assert first["topLeftCorner"] == ref["pointOfOrigin"]
        assert first["matrixWidth"] == ref["matrixWidth"]
    html = httpx.get(f"{api}/TileMatrixSets/WebMercatorQuad", params={"f": "html"},
                     timeout=60)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]


def test_gdal_ogcapi_driver_reads_the_tiles(api: str) -> None:
    """GDAL >= 3.8 (the one in pyogrio's wheel) opens a collection through its tilesets
    and finds every parcel of the district in the tiles of one zoom level."""
    import pyogrio

    major, minor = map(int, pyogrio.__gdal_version_string__.split(".")[:2])
    if (major, minor) < (3, 8) or "OGCAPI" not in pyogrio.list_drivers():
        pytest.skip(f"pyogrio's GDAL {pyogrio.__gdal_version_string__} has no usable "
                    "OGCAPI driver")
    source = f"OGCAPI:{api}/collections/parcels-001"
    layers = [name for name, _ in pyogrio.list_layers(source)]
    assert "Zoom level 15" in layers
    frame = pyogrio.read_dataframe(source, layer="Zoom level 15")
    every = httpx.get(f"{api}/collections/parcels-001/items",
                      params={"limit": 10000, "skipGeometry": "true"}, timeout=60).json()
    assert set(frame["mvt_id"].astype(int)) == {f["id"] for f in every["features"]}


@pytest.mark.skipif(shutil.which("ogrinfo") is None,
                    reason="GDAL command-line tools (gdal-bin) not installed")
@pytest.mark.parametrize("options", [[], ["-oo", "API=ITEMS"]])
def test_gdal_cli_ogcapi_reads_the_features(api: str, options: list[str]) -> None:
    """Debian's GDAL 3.6 prefers tiles once a collection links tilesets, and its build
    cannot read vector tiles (tiles.py): it failed silently. It is now given the
    collection without tilesets links and reads the items, as it does when asked to."""
    out = subprocess.run(["ogrinfo", "-ro", "-so", *options,
                          f"OGCAPI:{api}/collections/parcels-001", "parcels-001"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    hits = httpx.get(f"{api}/collections/parcels-001/items",
                     params={"resulttype": "hits"}, timeout=60).json()["numberMatched"]
    assert int(re.search(r"Feature Count: (\d+)", out).group(1)) == hits


def test_only_old_gdal_loses_the_tilesets_links(api: str) -> None:
    """The collection document keeps its tilesets links for everyone else (browsers,
    GDAL >= 3.7, curl), and says that it varies with the User-Agent."""
    url = f"{api}/collections/parcels-001"

    def rels(**headers: str) -> set[str]:
        r = httpx.get(url, headers=headers, timeout=60)
        assert r.status_code == 200 and "user-agent" in r.headers["vary"].lower()
        return {link["rel"] for link in r.json()["links"]}

    gdal_accept = "application/geo+json, application/json"
    assert TILESETS in rels(**{"Accept": gdal_accept, "User-Agent": "GDAL/3.12.4"})
    assert TILESETS in rels(**{"Accept": "application/json", "User-Agent": "Mozilla/5.0"})
    assert TILESETS not in rels(**{"Accept": gdal_accept, "User-Agent": "GDAL/3.6.2"})
    with httpx.Client(timeout=60) as client:  # no User-Agent at all, as GDAL 3.6 sends
        bare = client.build_request("GET", url, headers={"Accept": gdal_accept})
        del bare.headers["User-Agent"]
        r = client.send(bare)
    assert r.status_code == 200
    links = {link["rel"] for link in r.json()["links"]}
    assert TILESETS not in links and "items" in links and "self" in links
