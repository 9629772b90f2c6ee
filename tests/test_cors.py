"""CORS on every response of the real server, as a browser on another origin sees it:
preflights (with the Authorization header a token travels in), cross-origin GETs of the
fast lane, the tiles, the tileset metadata, coverages, pygeoapi's pages, errors and 304s;
and a server configured with a list of origins (echo the matching one, Vary: Origin)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import URL

from landplatform.app import PlatformApp
from support import free_port, serving

ORIGIN = "https://map.example.vn"
PATHS = [
    "/collections/parcels-001/items?limit=2",          # the fast lane
    "/collections/parcels-001/items?limit=2&f=html",   # pygeoapi through our router
    "/collections/parcels-001",                        # pygeoapi
    "/collections/parcels-001/tiles/WebMercatorQuad",  # tileset metadata
    "/collections/parcels-001/tiles/WebMercatorQuad/16/30430/52259",
    "/collections/price-surface-001/coverage?f=GTiff",
    "/collections/no-such-thing/items",                # 404
    "/collections/parcels-001/items?bbox=nonsense",    # 400
    "/conformance", "/health", "/map",
]


def _get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers={"Origin": ORIGIN, **headers}, timeout=120)


def _tile_path(api: str) -> str:
    """A z16 tile over the first parcel of district 001 (so it holds features)."""
    import math

    f = httpx.get(f"{api}/collections/parcels-001/items", params={"limit": 1},
                  timeout=60).json()["features"][0]
    lon, lat = f["geometry"]["coordinates"][0][0][0]
    n = 2 ** 16
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"/collections/parcels-001/tiles/WebMercatorQuad/16/{y}/{x}"


@pytest.mark.parametrize("path", PATHS)
def test_cross_origin_get_is_readable(api: str, path: str) -> None:
    if "/16/" in path:
        path = _tile_path(api)
    r = _get(api + path)
    assert r.status_code < 500, (path, r.status_code)
    assert r.headers.get("access-control-allow-origin") == "*", (path, dict(r.headers))
    assert "access-control-allow-credentials" not in r.headers
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"etag", "link", "content-crs", "x-tile-truncated", "content-range"} <= exposed
    # one value, not one from pygeoapi's own middleware and one from ours
    assert len(r.headers.get_list("access-control-allow-origin")) == 1


def test_304_and_tile_errors_carry_cors(api: str) -> None:
    path = _tile_path(api)
    first = _get(api + path)
    assert first.status_code == 200 and first.headers["etag"]
    again = _get(api + path, **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["access-control-allow-origin"] == "*"
    outside = _get(api + "/collections/parcels-001/tiles/WebMercatorQuad/1/9/9")
    assert outside.status_code == 400 and outside.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path", ["/collections/parcels-001/items",
                                  "/collections/parcels-001/tiles/WebMercatorQuad/12/1/1",
                                  "/processes/parcel-valuation/execution",
                                  "/collections/price-surface-001/coverage"])
def test_preflight_allows_authorization_and_no_credentials(api: str, path: str) -> None:
    r = httpx.options(api + path, timeout=60, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, range"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "range", "if-none-match"} <= allowed
    assert {"GET", "POST"} <= {m.strip() for m in
                               r.headers["access-control-allow-methods"].split(",")}
    assert "access-control-allow-credentials" not in r.headers
    assert int(r.headers["access-control-max-age"]) > 0


def test_a_500_carries_cors_too() -> None:
    """Starlette's error middleware answers an unhandled exception: ours is outside it."""
    app = PlatformApp()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom", headers={"Origin": ORIGIN})
    assert r.status_code == 500
    assert r.headers["access-control-allow-origin"] == "*"


@pytest.fixture(scope="module")
def listed(api_db_url: URL, api_var_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second real server, allowing two origins only."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": api_db_url.render_as_string(hide_password=False),
           "PORT": str(port), "HOST": "127.0.0.1", "LIS_VAR_DIR": str(api_var_dir),
           "LIS_CORS_ORIGINS": f"{ORIGIN}, http://localhost:5173"}
    log = tmp_path_factory.mktemp("cors") / "serve.log"
    try:
        with serving(env, log, timeout_s=90) as served:
            yield served.base
    except RuntimeError as exc:
        pytest.fail(str(exc))


def test_listed_origins_are_echoed_and_others_refused(listed: str) -> None:
    for path in ("/collections/parcels-001/items?limit=1", "/collections"):
        ok = _get(listed + path)
        assert ok.headers["access-control-allow-origin"] == ORIGIN
        assert "origin" in ok.headers["vary"].lower()
        other = httpx.get(listed + path, headers={"Origin": "https://evil.example"},
                          timeout=60)
        assert other.status_code == 200  # the data is public; the browser withholds it
        assert "access-control-allow-origin" not in other.headers
        assert "origin" in other.headers["vary"].lower()
    local = httpx.get(listed + "/collections", headers={"Origin": "http://localhost:5173"},
                      timeout=60)
    assert local.headers["access-control-allow-origin"] == "http://localhost:5173"
    pre = httpx.options(listed + "/collections/parcels-001/items", timeout=60, headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 403 and "access-control-allow-origin" not in pre.headers
    pre = httpx.options(listed + "/collections/parcels-001/items", timeout=60, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == ORIGIN
