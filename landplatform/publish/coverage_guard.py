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

The GeoTIFF answers take HTTP Range requests (and HEAD), so GDAL's ``/vsicurl/`` and
QGIS read a COG the way COGs are meant to be read, a header and then only the tiles and
overviews they draw. The whole coverage is the file itself, sent from disk by Starlette's
``FileResponse`` (ranges, ``If-Range``, validators); a bbox window is built by pygeoapi and
its bytes are then sliced per single range here. The media type is the one GDAL's OGC API
driver looks for, ``image/tiff; application=geotiff`` (from the collection's config).

GDAL's OGCAPI driver reads a coverage as a pyramid: every block it wants is a request for
a bbox at a size (``scaleSize=Lat(h),Long(w)``, OGC API Coverages' scaling). pygeoapi
does not implement scaling, so those GeoTIFF requests are answered here, from the COG's
own overviews (rasterio picks the level), with nearest-neighbour resampling so every
value is one the surface holds.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Awaitable, Callable
from functools import lru_cache
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from landplatform.publish.query import CRS84_URI

CRS84_NAMES = {CRS84_URI, "https://www.opengis.net/def/crs/OGC/1.3/CRS84", "4326"}
MAX_JSON_CELLS = 250_000  # a CoverageJSON window larger than 500 x 500 cells is refused
NATIVE_FORMATS = {"gtiff", "tif", "tiff", "geotiff"}
GEOTIFF = "image/tiff; application=geotiff"
MAX_SCALED_SIDE = 4096  # a scaled GeoTIFF is at most this many cells a side
_SCALE_AXIS = re.compile(r"\s*([A-Za-z]+)\s*\(\s*(\d+)\s*\)\s*")
_X_AXES = {"long", "lon", "x", "e", "easting"}
_Y_AXES = {"lat", "y", "n", "northing"}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


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


def scale_size(text: str) -> tuple[int, int]:
    """(width, height) of ``scaleSize=Lat(h),Long(w)`` (axis names as GDAL and the
    standard's examples write them, in either order)."""
    sizes: dict[str, int] = {}
    for part in text.split(","):
        match = _SCALE_AXIS.fullmatch(part)
        if match is None:
            raise CoverageQueryError("scaleSize must be like Lat(256),Long(256)")
        axis, n = match.group(1).lower(), int(match.group(2))
        key = "x" if axis in _X_AXES else "y" if axis in _Y_AXES else None
        if key is None:
            raise CoverageQueryError(f"scaleSize axis {match.group(1)!r} is not one of "
                                     "Lat/Long (or y/x)")
        sizes[key] = n
    if set(sizes) != {"x", "y"}:
        raise CoverageQueryError("scaleSize needs a size for both axes, e.g. "
                                 "Lat(256),Long(256)")
    width, height = sizes["x"], sizes["y"]
    if not (1 <= width <= MAX_SCALED_SIDE and 1 <= height <= MAX_SCALED_SIDE):
        raise CoverageQueryError(f"scaleSize must be 1..{MAX_SCALED_SIDE} cells a side")
    return width, height


def scaled_geotiff(path: str, bbox: list[float] | None, width: int, height: int) -> bytes:
    """The coverage over ``bbox`` (None: all of it) as a ``width`` x ``height`` GeoTIFF,
    read through the COG's overviews."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.io import MemoryFile
    from rasterio.transform import from_bounds
    from rasterio.windows import from_bounds as window_from_bounds

    with rasterio.open(path) as src:
        left, bottom, right, top = bbox or tuple(src.bounds)
        window = window_from_bounds(left, bottom, right, top, transform=src.transform)
        data = src.read(window=window, out_shape=(src.count, height, width),
                        resampling=Resampling.nearest, boundless=True,
                        fill_value=src.nodata if src.nodata is not None else 0)
        profile = {"driver": "GTiff", "width": width, "height": height,
                   "count": src.count, "dtype": data.dtype, "crs": src.crs,
                   "nodata": src.nodata, "compress": "deflate",
                   "transform": from_bounds(left, bottom, right, top, width, height)}
        with MemoryFile() as mem:
            with mem.open(**profile) as out:
                out.write(data)
                out.update_tags(**src.tags())
            return mem.read()


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range ``[start, end)`` a ``Range`` header asks of ``size`` bytes; None to
    send everything (no header, several ranges or a header we do not understand, which
    RFC 9110 lets a server ignore). Raises ``ValueError`` when unsatisfiable (a 416)."""
    match = _RANGE.fullmatch((header or "").strip().replace(" ", ""))
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":  # a suffix: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            raise ValueError("empty suffix range")
        return max(0, size - n), size
    start = int(first)
    end = size if last == "" else min(size, int(last) + 1)
    if start >= size or end <= start:
        raise ValueError("range starts beyond the end")
    return start, end


def ranged(request: Request, body: bytes, headers: dict[str, str]) -> Response:
    """``body`` (a GeoTIFF built for this request) answered per the request's Range."""
    etag = '"' + hashlib.sha1(body).hexdigest() + '"'
    out = {**headers, "ETag": etag, "Accept-Ranges": "bytes"}
    if_range = request.headers.get("if-range")
    try:
        span = None if if_range not in (None, etag) else byte_range(
            request.headers.get("range"), len(body))
    except ValueError:
        return Response(status_code=416, headers={**out, "Content-Range":
                                                  f"bytes */{len(body)}"})
    if span is None:
        return Response(body, media_type=GEOTIFF, headers=out)
    start, end = span
    return Response(body[start:end], status_code=206, media_type=GEOTIFF, headers={
        **out, "Content-Range": f"bytes {start}-{end - 1}/{len(body)}"})


def coverage_router(files: dict[str, str],
                    delegate: Callable[[Request], Awaitable[Response]]) -> APIRouter:
    """The guard for the coverages in ``files``; others go to pygeoapi untouched."""
    router = APIRouter()

    @router.api_route("/collections/{collection_id}/coverage", methods=["GET", "HEAD"],
                      include_in_schema=False)
    async def coverage(request: Request, collection_id: str) -> Response:
        # pygeoapi's routes answer GET only; a HEAD is its GET without the body (the
        # server drops the body of a HEAD response)
        as_get = Request({**request.scope, "method": "GET"}, request.receive)
        if collection_id not in files:
            return await delegate(as_get)
        params = request.query_params.multi_items()
        accept = request.headers.get("accept", "")
        try:
            query = await run_in_threadpool(checked_query, params, files[collection_id],
                                            accept)
        except CoverageQueryError as exc:
            return JSONResponse({"code": "InvalidParameterValue",
                                 "description": str(exc)}, status_code=400)
        native = wants_native(params, accept)
        scale = next((v for k, v in query if k == "scaleSize"), None)
        if native and scale is not None:
            try:
                width, height = scale_size(scale)
            except CoverageQueryError as exc:
                return JSONResponse({"code": "InvalidParameterValue",
                                     "description": str(exc)}, status_code=400)
            unsupported = sorted({k for k, _ in query} - {"f", "bbox", "scaleSize"})
            if unsupported:
                return JSONResponse({"code": "InvalidParameterValue", "description":
                                     "scaleSize combines with bbox only, not with "
                                     f"{', '.join(unsupported)}"}, status_code=400)
            bbox = next((check_bbox(v) for k, v in query if k == "bbox"), None)
            body = await run_in_threadpool(scaled_geotiff, files[collection_id], bbox,
                                           width, height)
            return ranged(request, body, {"Content-Disposition":
                                          f'attachment; filename="{collection_id}.tif"'})
        if native and all(k == "f" for k, _ in query):  # the whole coverage: the file
            return FileResponse(files[collection_id], media_type=GEOTIFF,
                                filename=f"{collection_id}.tif",
                                headers={"Cache-Control": "public, max-age=60"})
        scope = {**as_get.scope, "query_string": urlencode(query).encode()}
        response = await delegate(Request(scope, request.receive))
        if native and response.status_code == 200 and isinstance(response.body, bytes):
            return ranged(request, response.body, {
                k: v for k, v in response.headers.items()
                if k.lower() in ("content-disposition", "content-language", "x-powered-by")})
        return response

    return router
