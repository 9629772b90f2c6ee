"""OGC API Tiles: Mapbox vector tiles (WebMercatorQuad) for every feature collection our
provider serves, built by PostGIS (ST_AsMVT) from the same views as the features path.

Per zoom: geometry is simplified to about a pixel before encoding and each tile carries at
most ``MAX_FEATURES`` features (the rest are dropped in id order and the response says so
in ``X-Tile-Truncated``); below its layer's declared ``min_zoom`` a layer has nothing to
draw at a readable size (parcels, for instance), so those tiles are empty. Tiles are
cached in memory for ``TTL_S`` seconds and carry an ETag (hash of the bytes) and
Cache-Control, so a panning map re-requesting tiles gets 304s or memory hits.

A tile is gzip-compressed once, when it is built, and both encodings are cached: parcel
tiles are mostly repeated keys and small integers, and a browser on a district office's
line waits for every byte (``Content-Encoding: gzip`` to clients that accept it, with its
own ETag, since the bytes differ; ``Vary: Accept-Encoding`` for caches).

A dense z12 tile takes PostGIS seconds to build. Two rules keep those builds from tying up
every pooled connection (and turning other requests into 503s) when many users pan over
the same area: one build per tile at a time, whoever else asks for it meanwhile waits for
that build; and for ``STALE_S`` after it expires a tile is still served at once while one
build refreshes it in the background (stale-while-revalidate).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from landplatform.publish.features_api import Collection, FeaturesService, Unavailable

MVT = "application/vnd.mapbox-vector-tile"
TMS = "WebMercatorQuad"
MAX_ZOOM = 22
MAX_FEATURES = 20000
TTL_S = 60.0
STALE_S = 600.0
CACHE_TILES = 2048
WORLD_M = 40075016.685578488  # Web Mercator world width, metres
MAX_LAT = 85.0511287798066  # WebMercatorQuad's edge
GZIP_LEVEL = 6  # zlib's default: most of level 9's saving at a fraction of its time


@dataclass(frozen=True)
class Tile:
    """An encoded tile in both encodings, with their ETags (computed once, when built)."""

    data: bytes
    truncated: bool
    gzipped: bytes
    etag: str
    gzip_etag: str

    @classmethod
    def encode(cls, data: bytes, truncated: bool) -> Tile:
        digest = hashlib.sha1(data).hexdigest()
        packed = gzip.compress(data, GZIP_LEVEL, mtime=0) if data else b""
        return cls(data, truncated, packed, f'"{digest}"', f'"{digest}-gzip"')


class TileCache:
    """A small LRU of encoded tiles with a time-to-live (bounded in count); an expired tile
    stays available as stale for ``stale`` seconds more."""

    def __init__(self, size: int = CACHE_TILES, ttl: float = TTL_S,
                 stale: float = STALE_S) -> None:
        self.size, self.ttl, self.stale = size, ttl, stale
        self._items: OrderedDict[tuple, tuple[float, Tile]] = OrderedDict()

    def get(self, key: tuple) -> tuple[Tile, bool] | None:
        """(tile, fresh), or None when absent or too old even to serve stale."""
        hit = self._items.get(key)
        if hit is None:
            return None
        age = time.monotonic() - hit[0]
        if age > self.ttl + self.stale:
            return None
        self._items.move_to_end(key)
        return hit[1], age <= self.ttl

    def put(self, key: tuple, tile: Tile) -> None:
        self._items[key] = (time.monotonic(), tile)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class TileBuilder:
    """Builds tiles into the cache, one build per tile at a time.

    A build runs as its own task: a requester that gives up (a client gone) does not
    cancel it for the others waiting, and a background refresh needs no requester at all.
    """

    def __init__(self, service: FeaturesService, cache: TileCache) -> None:
        self.service, self.cache = service, cache
        self._building: dict[tuple, asyncio.Task] = {}

    def build(self, col: Collection, z: int, x: int, y: int) -> asyncio.Task:
        """The running build of this tile, started if there is none; its result is a
        ``Tile`` and it raises ``Unavailable`` when the database cannot take it."""
        key = (col.id, z, x, y)
        task = self._building.get(key)
        if task is None:
            task = asyncio.ensure_future(self._build(col, z, x, y, key))
            self._building[key] = task
            task.add_done_callback(partial(self._done, key))
        return task

    def _done(self, key: tuple, task: asyncio.Task) -> None:
        self._building.pop(key, None)
        if not task.cancelled():
            task.exception()  # a refresh nobody awaited failed: the stale tile stays

    async def _build(self, col: Collection, z: int, x: int, y: int, key: tuple) -> Tile:
        def build() -> Tile:
            data, count = self.service.execute(
                lambda c: c.execute(tile_statement(col, z, x, y)).one())
            return Tile.encode(bytes(data or b""), count > MAX_FEATURES)

        tile = await run_in_threadpool(build)  # compressing takes CPU: not on the loop
        self.cache.put(key, tile)
        return tile


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header accepts gzip (``gzip`` or ``*``, q above 0)."""
    best: dict[str, float] = {}
    for part in header.lower().split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best[name.strip()] = q
    return best.get("gzip", best.get("x-gzip", best.get("*", 0.0))) > 0


def matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match against an ETag, by the weak comparison 304s use (a list, ``*``)."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


def tile_limits(bbox: list[float] | None, min_zoom: int, max_zoom: int) -> list[dict]:
    """``tileMatrixSetLimits`` of WebMercatorQuad for an extent: per zoom, the rows and
    columns of the tiles that meet the bbox (so a client asks for nothing outside)."""
    if not bbox:
        return []
    minx, miny, maxx, maxy = bbox[:4] if len(bbox) == 4 else (bbox[0], bbox[1], bbox[3],
                                                               bbox[4])

    def col(lon: float, n: int) -> int:
        return min(n - 1, max(0, math.floor((lon + 180) / 360 * n)))

    def row(lat: float, n: int) -> int:
        lat = max(-MAX_LAT, min(MAX_LAT, lat))
        y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2
        return min(n - 1, max(0, math.floor(y * n)))

    return [{"tileMatrix": str(z), "minTileRow": row(maxy, 2 ** z),
             "maxTileRow": row(miny, 2 ** z), "minTileCol": col(minx, 2 ** z),
             "maxTileCol": col(maxx, 2 ** z)} for z in range(min_zoom, max_zoom + 1)]


def tile_statement(col: Collection, z: int, x: int, y: int) -> sa.TextClause:
    """ST_AsMVT over the collection's view; names come from the layer declaration."""
    layer = col.layer
    props = ", ".join(f'v."{f.name}"' for f in layer.fields)
    where = " AND ".join([f'v."{k}" = :fixed_{i}' for i, k in enumerate(col.fixed)]
                         + [f'v."{layer.geom_field}" && ST_Transform(b.env, 4326)'])
    pixel = WORLD_M / (2 ** z) / 4096
    sql = f"""
        WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env),
        rows AS (
            SELECT v."{layer.id_field}" AS id, {props},
                   ST_AsMVTGeom(ST_Simplify(ST_Transform(v."{layer.geom_field}", 3857), :tol),
                                b.env, 4096, 64, true) AS geom
              FROM {layer.view} v, b
             WHERE {where}
             ORDER BY v."{layer.id_field}"
             LIMIT :limit + 1
        )
        SELECT (SELECT ST_AsMVT(t, :name, 4096, 'geom', 'id')
                  FROM (SELECT * FROM rows WHERE geom IS NOT NULL ORDER BY id LIMIT :limit) t),
               (SELECT count(*) FROM rows)
    """
    params = {"z": z, "x": x, "y": y, "limit": MAX_FEATURES, "name": col.id, "tol": pixel,
              **{f"fixed_{i}": v for i, v in enumerate(col.fixed.values())}}
    return sa.text(sql).bindparams(**params)


def tiles_router(service: FeaturesService) -> APIRouter:
    router = APIRouter()
    cache = TileCache()
    builder = TileBuilder(service, cache)

    def tileset(col: Collection) -> dict:
        base = f"{service.base_url}/collections/{col.id}/tiles/{TMS}"
        return {
            "title": f"{col.title} (vector tiles)",
            "dataType": "vector",
            "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
            "tileMatrixSetURI": "http://www.opengis.net/def/tilematrixset/OGC/1.0/"
                                "WebMercatorQuad",
            "tileMatrixSetLimits": tile_limits(col.bbox, col.layer.min_zoom, MAX_ZOOM),
            "minZoom": col.layer.min_zoom,
            "maxZoom": MAX_ZOOM,
            "layers": [{"id": col.id, "dataType": "vector",
                        "propertiesSchema": {"type": "object",
                                             "properties": col.layer.field_schemas()}}],
            "links": [
                {"rel": "self", "type": "application/json", "href": base},
                {"rel": "item", "type": MVT, "templated": True,
                 "href": f"{base}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}?f=mvt"},
                {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                 "type": "application/json",
                 "href": f"{service.base_url}/TileMatrixSets/{TMS}"},
            ],
        }

    def collection_or_404(cid: str) -> Collection | JSONResponse:
        col = service.collections.get(cid)
        if col is None or not col.layer.geom_field:
            return JSONResponse({"code": "NotFound", "description": "no tiles for this "
                                 "collection"}, status_code=404)
        return col

    @router.get("/collections/{collection_id}/tiles", include_in_schema=False)
    def tilesets(collection_id: str) -> Response:
        col = collection_or_404(collection_id)
        if isinstance(col, Response):
            return col
        return JSONResponse({"tilesets": [tileset(col)], "links": []})

    @router.get(f"/collections/{{collection_id}}/tiles/{TMS}", include_in_schema=False)
    def tileset_metadata(collection_id: str) -> Response:
        col = collection_or_404(collection_id)
        return col if isinstance(col, Response) else JSONResponse(tileset(col))

    @router.get(f"/collections/{{collection_id}}/tiles/{TMS}/{{z}}/{{y}}/{{x}}",
                include_in_schema=False)
    async def tile(request: Request, collection_id: str, z: int, y: int, x: int) -> Response:
        col = collection_or_404(collection_id)
        if isinstance(col, Response):
            return col
        if not (0 <= z <= MAX_ZOOM and 0 <= x < 2 ** z and 0 <= y < 2 ** z):
            return JSONResponse({"code": "InvalidParameterValue",
                                 "description": "tile outside WebMercatorQuad"},
                                status_code=400)
        key = (col.id, z, x, y)
        cached = cache.get(key)
        if cached is not None:
            tile, fresh = cached
            if not fresh:
                builder.build(col, z, x, y)  # refresh in the background; serve stale now
        elif z < col.layer.min_zoom:
            tile = Tile.encode(b"", False)
            cache.put(key, tile)
        else:
            try:
                tile = await asyncio.shield(builder.build(col, z, x, y))
            except Unavailable as exc:
                return JSONResponse({"code": "ServiceUnavailable",
                                     "description": str(exc)}, status_code=503,
                                    headers={"Retry-After": "2"})
        packed = bool(tile.data) and accepts_gzip(request.headers.get("accept-encoding", ""))
        etag = tile.gzip_etag if packed else tile.etag
        headers = {"ETag": etag, "Cache-Control": f"public, max-age={int(TTL_S)}",
                   "X-Tile-Truncated": "true" if tile.truncated else "false",
                   "Vary": "Accept-Encoding"}
        if matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        if not tile.data:
            return Response(status_code=204, headers=headers)
        if packed:
            return Response(tile.gzipped, media_type=MVT,
                            headers={**headers, "Content-Encoding": "gzip"})
        return Response(tile.data, media_type=MVT, headers=headers)

    return router
