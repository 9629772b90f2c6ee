"""OGC API Features Part 1, bbox: only features whose geometry intersects the box are in
the result, on every path (the JSON fast lane, pygeoapi's HTML and JSON-LD pages through
our provider, resulttype=hits), for a layer without geometry (the plan register) and for
layers whose rows may have none (admin units above the commune, land-use codes)."""

from __future__ import annotations

import re
import shutil
import subprocess

import httpx
import pytest
from shapely.geometry import box, shape

VIETNAM = (102.1, 6.0, 117.9, 23.5)
EUROPE = (2.0, 48.0, 3.0, 49.0)
COLLECTIONS = ["plans", "admin-units", "land-use-types", "planning-zones-001"]


def _bbox(b: tuple[float, ...]) -> str:
    return ",".join(map(str, b))


def _json(api: str, cid: str, b: tuple[float, ...], **params: str) -> dict:
    r = httpx.get(f"{api}/collections/{cid}/items", timeout=60,
                  params={"bbox": _bbox(b), "limit": "10000", **params})
    assert r.status_code == 200, r.text[:300]
    return r.json()


def _html_ids(api: str, cid: str, b: tuple[float, ...]) -> set[str]:
    r = httpx.get(f"{api}/collections/{cid}/items", timeout=60,
                  params={"bbox": _bbox(b), "limit": "500", "f": "html"})
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    return set(re.findall(rf'/collections/{re.escape(cid)}/items/([^"?/]+)" title=', r.text))


def _every(api: str, cid: str) -> list[dict]:
    """Every feature of the collection, following next links (bounded)."""
    features: list[dict] = []
    url = f"{api}/collections/{cid}/items"
    params: dict | None = {"limit": "10000"}
    for _ in range(50):
        page = httpx.get(url, params=params, timeout=60).json()
        features += page["features"]
        url = next((lk["href"] for lk in page["links"] if lk["rel"] == "next"), None)
        if url is None:
            return features
        params = None  # the next link carries the query (httpx: {} would drop it)
    raise AssertionError(f"{cid}: more than 50 pages")


@pytest.mark.parametrize("cid", COLLECTIONS)
def test_bbox_far_away_matches_nothing_on_any_path(api: str, cid: str) -> None:
    page = _json(api, cid, EUROPE, f="json")
    assert page["features"] == [] and page["numberReturned"] == 0
    assert page.get("numberMatched", 0) == 0
    assert _json(api, cid, EUROPE, resulttype="hits")["numberMatched"] == 0
    assert _json(api, cid, EUROPE, f="jsonld")["features"] == []
    assert _html_ids(api, cid, EUROPE) == set()


@pytest.mark.parametrize("cid", COLLECTIONS)
def test_bbox_returns_only_features_with_a_geometry_in_the_box(api: str, cid: str) -> None:
    area = box(*VIETNAM)
    page = _json(api, cid, VIETNAM, f="json")
    every = _every(api, cid)
    expected = {str(f["id"]) for f in every
                if f["geometry"] is not None and shape(f["geometry"]).intersects(area)}
    got = {str(f["id"]) for f in page["features"]}
    assert all(f["geometry"] is not None for f in page["features"])
    assert got == expected
    assert _json(api, cid, VIETNAM, resulttype="hits")["numberMatched"] == len(expected)
    if len(expected) <= 500:  # pygeoapi's pages carry at most the HTML page limit
        jsonld = _json(api, cid, VIETNAM, f="jsonld", limit="500")
        assert {f["@id"].rsplit("/", 1)[1] for f in jsonld["features"]} == expected
        assert _html_ids(api, cid, VIETNAM) == expected


def test_the_cases_are_real(api: str) -> None:
    """The collections above do hold rows without geometry (else the test proves nothing)."""
    for cid in ("plans", "admin-units", "land-use-types"):
        every = _every(api, cid)
        assert any(f["geometry"] is None for f in every), cid


@pytest.mark.skipif(shutil.which("ogrinfo") is None,
                    reason="GDAL command-line tools (gdal-bin) not installed")
@pytest.mark.parametrize("cid", ["plans", "admin-units", "planning-zones-001"])
def test_gdal_oapif_spatial_filter_agrees(api: str, cid: str) -> None:
    """GDAL's OAPIF driver (QGIS) sends the bbox and counts what comes back."""
    def count(*spat: float) -> int:
        out = subprocess.run(["ogrinfo", "-ro", "-so", "-spat", *map(str, spat),
                              f"OAPIF:{api}", cid], capture_output=True, text=True,
                             timeout=120, check=True).stdout
        return int(re.search(r"Feature Count: (\d+)", out).group(1))

    assert count(*EUROPE) == 0
    expected = _json(api, cid, VIETNAM, resulttype="hits")["numberMatched"]
    assert count(*VIETNAM) == expected
