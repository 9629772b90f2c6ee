"""``GET /collections/{id}/coverage``: checks the query before pygeoapi's coverage route.

Why: pygeoapi 0.22's coverage endpoint answers a malformed ``bbox`` with a 500, passes
``bbox-crs`` to ``CRS.from_epsg`` (so any URI, even CRS84's, is a 500) and lets rasterio
fail on a bbox far outside the raster. A client's mistake must be a 400 that says what is
wrong; schemathesis found these. Our price surfaces are stored in WGS84 lon/lat, so a bbox
is four CRS84 numbers; a ``bbox-crs`` naming CRS84 (or EPSG:4326's number) is accepted and
dropped before pygeoapi sees it.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from landplatform.publish.query import CRS84_URI

CRS84_NAMES = {CRS84_URI, "https://www.opengis.net/def/crs/OGC/1.3/CRS84", "4326"}


class CoverageQueryError(ValueError):
    """A coverage request parameter a client must correct."""


def check_bbox(text: str) -> None:
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


def checked_query(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The query pygeoapi may see: checked, with a CRS84 ``bbox-crs`` dropped."""
    out = []
    for key, value in params:
        if key == "bbox":
            check_bbox(value)
        elif key == "bbox-crs":
            if value not in CRS84_NAMES:
                raise CoverageQueryError(f"bbox-crs {value!r} is not offered: coverages take a "
                                         f"bbox in CRS84 ({CRS84_URI})")
            continue
        out.append((key, value))
    return out


def coverage_ids(config: dict) -> set[str]:
    """The collections of a pygeoapi config that a coverage provider serves."""
    return {cid for cid, res in config.get("resources", {}).items()
            if any(p.get("type") == "coverage" for p in res.get("providers", []))}


def coverage_router(coverage_ids: set[str],
                    delegate: Callable[[Request], Awaitable[Response]]) -> APIRouter:
    """The guard for the coverages in ``coverage_ids``; others go to pygeoapi untouched."""
    router = APIRouter()

    @router.get("/collections/{collection_id}/coverage", include_in_schema=False)
    async def coverage(request: Request, collection_id: str) -> Response:
        if collection_id not in coverage_ids:
            return await delegate(request)
        try:
            query = checked_query(request.query_params.multi_items())
        except CoverageQueryError as exc:
            return JSONResponse({"code": "InvalidParameterValue",
                                 "description": str(exc)}, status_code=400)
        scope = {**request.scope, "query_string": urlencode(query).encode()}
        return await delegate(Request(scope, request.receive))

    return router
