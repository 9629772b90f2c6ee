"""``GET /collections/{id}/coverage``: checks the query before pygeoapi's coverage route.

Why: pygeoapi 0.22's coverage endpoint answers a malformed ``bbox`` with a 500, passes
``bbox-crs`` to ``CRS.from_epsg`` (so any URI, even CRS84's, is a 500) and lets rasterio
fail on a bbox far outside the raster. A client's mistake must be a 400 that says what is
wrong; schemathesis found these. Our price surfaces are stored in WGS84 lon/lat, so a bbox
is four CRS84 numbers; a ``bbox-crs`` naming CRS84 (or EPSG:4326's number) is accepted and
dropped before pygeoapi sees it.

CoverageJSON is built in Python, value by value: a whole district surface (millions of
cells) as CoverageJSON takes pygeoapi tens of seconds and hundreds of MB. Such requests
are refused with a 400 that says to give a smaller bbox or ask for the GeoTIFF
(``f=GTiff``), which is streamed from the COG.
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable
from functools import lru_cache
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from landplatform.publish.query import CRS84_URI

CRS84_NAMES = {CRS84_URI, "https://www.opengis.net/def/crs/OGC/1.3/CRS84", "4326"}
MAX_JSON_CELLS = 250_000  # a CoverageJSON window larger than 500 x 500 cells is refused
NATIVE_FORMATS = {"gtiff", "tif", "tiff", "geotiff"}


class CoverageQueryError(ValueError):
    """A coverage request parameter a client must correct."""


def check_bbox(text: str) -> list[float]:
    """Four finite CRS84 numbers, lower-left below and left of upper-right."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise CoverageQueryError("bbox must be 4 comma-separated numbers") from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise CoverageQueryError("bbox must be 4 finite comma-separated numbers "
                                 "(minlon,minlat,maxlon,maxlat); coverages are 2D")
    minx, miny, maxx, maxy = values
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        raise CoverageQueryError("bbox must be minlon,minlat,maxlon,maxlat in CRS84 with "
                                 "min < max, longitudes in [-180, 180] and latitudes in "
                                 "[-90, 90]")
    return values


@lru_cache(maxsize=4096)
def _grid_of(path: str, mtime_ns: int) -> tuple[tuple[float, float, float, float], float, float]:
    import rasterio

    with rasterio.open(path) as src:
        return tuple(src.bounds), abs(src.res[0]), abs(src.res[1])


def _grid(path: str) -> tuple[tuple[float, float, float, float], float, float]:
    """The raster's bounds and cell size (read once per file version)."""
    return _grid_of(path, os.stat(path).st_mtime_ns)


def json_cells(path: str, bbox: list[float] | None) -> int:
    """How many cells a CoverageJSON answer for ``bbox`` (None: everything) would hold."""
    (left, bottom, right, top), dx, dy = _grid(path)
    if bbox is not None:
        left, bottom = max(left, bbox[0]), max(bottom, bbox[1])
        right, top = min(right, bbox[2]), min(top, bbox[3])
    if right <= left or top <= bottom:
        return 0
    return math.ceil((right - left) / dx) * math.ceil((top - bottom) / dy)


def wants_native(params: list[tuple[str, str]], accept: str) -> bool:
    """Whether the answer is the GeoTIFF (streamed) rather than CoverageJSON (built)."""
    f = next((v for k, v in params if k == "f"), None)
    if f is not None:
        return f.lower() in NATIVE_FORMATS
    return "image/tiff" in accept and "json" not in accept


def checked_query(params: list[tuple[str, str]], path: str | None = None,
                  accept: str = "") -> list[tuple[str, str]]:
    """The query pygeoapi may see: checked, with a CRS84 ``bbox-crs`` dropped."""
    out = []
    bbox: list[float] | None = None
    for key, value in params:
        if key == "bbox":
            bbox = check_bbox(value)
        elif key == "bbox-crs":
            if value not in CRS84_NAMES:
                raise CoverageQueryError(f"bbox-crs {value!r} is not offered: coverages take a "
                                         f"bbox in CRS84 ({CRS84_URI})")
            continue
        out.append((key, value))
    if path is not None and bbox is not None:
        (left, bottom, right, top), _dx, _dy = _grid(path)
        if bbox[2] <= left or bbox[0] >= right or bbox[3] <= bottom or bbox[1] >= top:
            raise CoverageQueryError(
                f"bbox {','.join(f'{v:g}' for v in bbox)} does not meet the coverage, "
                f"which covers {left:.5f},{bottom:.5f},{right:.5f},{top:.5f} (CRS84)")
    if path is not None and not wants_native(params, accept):
        cells = json_cells(path, bbox)  # a subset without bbox counts as everything
        if cells > MAX_JSON_CELLS:
            raise CoverageQueryError(
                f"the window holds {cells:,} cells; CoverageJSON is limited to "
                f"{MAX_JSON_CELLS:,}: give a smaller bbox, or ask f=GTiff for the GeoTIFF")
    return out


def coverage_files(config: dict) -> dict[str, str]:
    """The coverages of a pygeoapi config and the raster file each serves."""
    return {cid: p["data"] for cid, res in config.get("resources", {}).items()
            for p in res.get("providers", []) if p.get("type") == "coverage"}


def coverage_router(files: dict[str, str],
                    delegate: Callable[[Request], Awaitable[Response]]) -> APIRouter:
    """The guard for the coverages in ``files``; others go to pygeoapi untouched."""
    router = APIRouter()

    @router.get("/collections/{collection_id}/coverage", include_in_schema=False)
    async def coverage(request: Request, collection_id: str) -> Response:
        if collection_id not in files:
            return await delegate(request)
        try:
            query = await run_in_threadpool(
                checked_query, request.query_params.multi_items(), files[collection_id],
                request.headers.get("accept", ""))
        except CoverageQueryError as exc:
            return JSONResponse({"code": "InvalidParameterValue",
                                 "description": str(exc)}, status_code=400)
        scope = {**request.scope, "query_string": urlencode(query).encode()}
        return await delegate(Request(scope, request.receive))

    return router
