"""OGC API Tiles: Mapbox vector tiles (WebMercatorQuad) for every feature collection our
provider serves, built by PostGIS (ST_AsMVT) from the same views as the features path.

Per zoom: geometry is simplified to about a pixel before encoding and each tile carries at
most ``MAX_FEATURES`` features (the rest are dropped in id order and the response says so
in ``X-Tile-Truncated``). Below its layer's declared ``min_zoom`` a layer's features are
too small to draw (parcels, for instance): there its tiles come from the generalised
sources the layer declares (``Layer.generalised``: a domain's summary view, shapes of the
units that hold the features), in the same tile layer, so a client of the collection's
tileset sees something at every zoom; a layer that declares none has empty tiles there.
``?f=tilejson`` on a tileset gives the TileJSON MapLibre and other web maps take as a
source URL. Tiles are
cached in memory for ``TTL_S`` seconds and carry an ETag (hash of the bytes) and
Cache-Control, so a panning map re-requesting tiles gets 304s or memory hits.

Two tile matrix sets: WebMercatorQuad (what web maps use) and WorldCRS84Quad (lon/lat
tiles, twice as many columns as rows). GDAL's OGC API driver prefers a collection's
tiles to its items and the latter tile matrix set to others, and works out which vector
tiles exist from the CRS84 extent as if it were in the tile matrix set's units: with
WebMercatorQuad alone it found no tiles and could not open the collection at all.
GDAL 3.6's TileMatrixSet reader takes only the 1.0 encoding, so ``/TileMatrixSets/{id}``
carries both (``with_tms_1_0_keys``). Debian's GDAL 3.6 build cannot read vector tiles
through that driver at all: its vector-tiles branch is compiled out (the build defines
``OGR_ENABLE_DRIVER_GML`` for it too late; the binary lacks the branch's strings), so it
gave up silently on any collection that links tilesets. Such a GDAL sends no User-Agent
(3.7 and later send ``GDAL/x.y.z``): to it the collection document comes without its
tilesets links (``Vary: User-Agent``), and its driver reads the items instead.

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
import json
import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from landplatform.publish.features_api import Collection, FeaturesService, Unavailable
from landplatform.publish.layers import Generalised, Layer

MVT = "application/vnd.mapbox-vector-tile"
TILESETS_REL = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-"
TMS = "WebMercatorQuad"  # the default, and the first tileset listed
MAX_ZOOM = 22
MAX_FEATURES = 20000
TTL_S = 60.0
STALE_S = 600.0
CACHE_TILES = 2048
WORLD_M = 40075016.685578488  # Web Mercator world width, metres
MAX_LAT = 85.0511287798066  # WebMercatorQuad's edge
# a generalised shape is drawn at least this many pixels wide (tiles shown at 512 px)
MIN_PIXELS = 3
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


@dataclass(frozen=True)
class Grid:
    """A tile matrix set: its CRS, matrix sizes and tile envelopes (all quad trees)."""

    id: str
    crs: str
    srid: int
    columns_at_zero: int  # matrix width at level 0 (height is always 2**z)
    # how many levels finer than WebMercatorQuad a level of this grid is, in tile size
    # (WorldCRS84Quad's level z tiles are as wide as WebMercatorQuad's z + 1)
    offset: int

    @property
    def uri(self) -> str:
        return f"http://www.opengis.net/def/tilematrixset/OGC/1.0/{self.id}"

    def size(self, z: int) -> tuple[int, int]:
        """(matrix width, matrix height) at level z."""
        return self.columns_at_zero * 2 ** z, 2 ** z

    def min_zoom(self, layer_min_zoom: int) -> int:
        """The level of this grid whose tiles match the layer's WebMercatorQuad
        ``min_zoom`` in size (so a tile's feature budget is the same on either grid)."""
        return max(0, layer_min_zoom - self.offset)

    def web_mercator_zoom(self, z: int) -> int:
        """The WebMercatorQuad zoom whose tiles are as wide as this grid's level z (what
        a layer's declared zooms are in)."""
        return z + self.offset

    def envelope_sql(self) -> str:
        """SQL for the envelope of tile (:z, :x, :y), in ``srid``."""
        if self.srid == 3857:
            return "ST_TileEnvelope(:z, :x, :y)"
        return ("ST_MakeEnvelope(-180 + :x * 180.0 / 2 ^ :z, 90 - (:y + 1) * 180.0 / 2 ^ :z,"
                " -180 + (:x + 1) * 180.0 / 2 ^ :z, 90 - :y * 180.0 / 2 ^ :z, 4326)")

    def bounds(self, z: int, x: int, y: int) -> tuple[float, float, float, float]:
        """The CRS84 bounds (west, south, east, north) of tile (z, x, y)."""
        cols, rows = self.size(z)
        west, east = -180 + 360 * x / cols, -180 + 360 * (x + 1) / cols
        if self.srid == 3857:
            def lat(row: int) -> float:
                return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / rows))))
            return west, lat(y + 1), east, lat(y)
        return west, 90 - 180 * (y + 1) / rows, east, 90 - 180 * y / rows

    def pixel(self, z: int) -> float:
        """A 4096th of a tile's width, in the grid's units (the simplification)."""
        width = WORLD_M if self.srid == 3857 else 360.0
        return width / self.size(z)[0] / 4096

    def tile_of(self, lon: float, lat: float, z: int) -> tuple[int, int]:
        """(column, row) of the tile holding a CRS84 point, clamped to the matrix."""
        cols, rows = self.size(z)
        x = (lon + 180) / 360
        if self.srid == 3857:
            lat = max(-MAX_LAT, min(MAX_LAT, lat))
            y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2
        else:
            y = (90 - lat) / 180
        return (min(cols - 1, max(0, math.floor(x * cols))),
                min(rows - 1, max(0, math.floor(y * rows))))


GRIDS = {g.id: g for g in (
    Grid("WebMercatorQuad", "http://www.opengis.net/def/crs/EPSG/0/3857", 3857, 1, 0),
    Grid("WorldCRS84Quad", "http://www.opengis.net/def/crs/OGC/1.3/CRS84", 4326, 2, 1))}


class TileBuilder:
    """Builds tiles into the cache, one build per tile at a time.

    A build runs as its own task: a requester that gives up (a client gone) does not
    cancel it for the others waiting, and a background refresh needs no requester at all.
    """

    def __init__(self, service: FeaturesService, cache: TileCache) -> None:
        self.service, self.cache = service, cache
        self._building: dict[tuple, asyncio.Task] = {}

    def build(self, col: Collection, z: int, x: int, y: int,
              grid: Grid = GRIDS[TMS]) -> asyncio.Task:
        """The running build of this tile, started if there is none; its result is a
        ``Tile`` and it raises ``Unavailable`` when the database cannot take it."""
        key = tile_key(col, grid, z, x, y)
        task = self._building.get(key)
        if task is None:
            task = asyncio.ensure_future(self._build(col, z, x, y, key, grid))
            self._building[key] = task
            task.add_done_callback(partial(self._done, key))
        return task

    def _done(self, key: tuple, task: asyncio.Task) -> None:
        self._building.pop(key, None)
        if not task.cancelled():
            task.exception()  # a refresh nobody awaited failed: the stale tile stays

    async def _build(self, col: Collection, z: int, x: int, y: int, key: tuple,
                     grid: Grid) -> Tile:
        source = tile_source(col, grid, z)

        def build() -> Tile:
            if source is None:
                return Tile.encode(b"", False)
            data, count = self.service.execute(
                lambda c: c.execute(tile_statement(col, z, x, y, grid, source,
                                                   tile_units(c, col, grid, z, x, y, source)
                                                   )).one())
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


def tile_key(col: Collection, grid: Grid, z: int, x: int, y: int) -> tuple:
    return (col.id, z, x, y) if grid.id == TMS else (col.id, grid.id, z, x, y)


def tile_limits(bbox: list[float] | None, min_zoom: int, max_zoom: int,
                grid: Grid = GRIDS[TMS]) -> list[dict]:
    """``tileMatrixSetLimits`` of ``grid`` for an extent: per zoom, the rows and columns
    of the tiles that meet the bbox (so a client asks for nothing outside)."""
    if not bbox:
        return []
    minx, miny, maxx, maxy = bbox[:4] if len(bbox) == 4 else (bbox[0], bbox[1], bbox[3],
                                                               bbox[4])
    limits = []
    for z in range(min_zoom, max_zoom + 1):
        (min_col, min_row), (max_col, max_row) = (grid.tile_of(minx, maxy, z),
                                                  grid.tile_of(maxx, miny, z))
        limits.append({"tileMatrix": str(z), "minTileRow": min_row, "maxTileRow": max_row,
                       "minTileCol": min_col, "maxTileCol": max_col})
    return limits


def tile_source(col: Collection, grid: Grid, z: int) -> Layer | Generalised | None:
    """What tile level z of ``grid`` is drawn from: the layer, one of its generalised
    sources, or nothing. A generalised source serves a per-unit collection only if it
    carries the fields that collection is fixed by (else it would show other units)."""
    source = col.layer.tile_source(grid.web_mercator_zoom(z))
    if isinstance(source, Generalised):
        names = {f.name for f in source.fields}
        if not set(col.fixed) <= names:
            return None
    return source


def first_level(col: Collection, grid: Grid) -> int:
    """The coarsest level of ``grid`` with anything to draw for the collection."""
    layer = col.layer
    usable = [g.min_zoom for g in layer.generalised
              if set(col.fixed) <= {f.name for f in g.fields}]
    return grid.min_zoom(min([*usable, layer.min_zoom]))


def tile_units(conn: Connection, col: Collection, grid: Grid, z: int, x: int, y: int,
               source: Layer | Generalised | None) -> list[str] | None:
    """The units (``Layer.extents``) tile (z, x, y) can meet, for a tile of the layer's
    own features (not a summary's) in a collection not fixed to one unit; else None."""
    layer = col.layer
    if source is not layer or layer.extents is None or layer.extents.key in col.fixed:
        return None
    return list(conn.execute(layer.extents.statement(grid.bounds(z, x, y))).scalars())


def tile_statement(col: Collection, z: int, x: int, y: int,
                   grid: Grid = GRIDS[TMS],
                   source: Layer | Generalised | None = None,
                   units: list[str] | None = None) -> sa.TextClause:
    """ST_AsMVT over the collection's view (or the generalised ``source`` for this zoom);
    names come from the layer declaration, the envelope and CRS from the grid (ours, not
    the client's). The tile layer is named after the collection whatever the source.
    ``units``: the units the tile can meet (``tile_units``), so only their partitions are
    planned."""
    layer = source or col.layer
    # a numeric column would reach the tile as a string (ST_AsMVT's rule for numeric):
    # a "number" field is sent as a double, as its schema says
    props = ", ".join(f'v."{f.name}"::float8 AS "{f.name}"' if f.type == "number"
                      else f'v."{f.name}"' for f in layer.fields if f.name != layer.id_field)
    where = " AND ".join([f'v."{k}" = :fixed_{i}' for i, k in enumerate(col.fixed)]
                         + [f'v."{layer.geom_field}" && ST_Transform(b.env, 4326)']
                         + ([f'v."{col.layer.extents.key}" = ANY(:units)']
                            if units is not None and col.layer.extents else []))
    geom = f'v."{layer.geom_field}"'
    if grid.srid != 4326:
        geom = f"ST_Transform({geom}, {int(grid.srid)})"
    shape = "ST_Simplify(g.g, :tol)"
    if isinstance(layer, Generalised):
        # a summary shape is kept at every zoom: one smaller than MIN_PIXELS becomes a
        # square of that size on its point on surface (a district at z0 is a dot, not
        # nothing), a larger one keeps its collapsed parts
        shape = ("CASE WHEN greatest(ST_XMax(g.g) - ST_XMin(g.g), ST_YMax(g.g) - "
                 "ST_YMin(g.g)) < :tol * :min_units THEN ST_Expand(ST_PointOnSurface(g.g),"
                 " :tol * :min_units / 2) ELSE ST_Simplify(g.g, :tol, true) END")
    sql = f"""
        WITH b AS (SELECT {grid.envelope_sql()} AS env),
        rows AS (
            SELECT v."{layer.id_field}" AS id, {props},
                   ST_AsMVTGeom({shape}, b.env, 4096, 64, true) AS geom
              FROM {layer.view} v CROSS JOIN b CROSS JOIN LATERAL (SELECT {geom} AS g) g
             WHERE {where}
             ORDER BY v."{layer.id_field}"
             LIMIT :limit + 1
        )
        SELECT (SELECT ST_AsMVT(t, :name, 4096, 'geom', 'id')
                  FROM (SELECT * FROM rows WHERE geom IS NOT NULL ORDER BY id LIMIT :limit) t),
               (SELECT count(*) FROM rows)
    """
    params = {"z": z, "x": x, "y": y, "limit": MAX_FEATURES, "name": col.id,
              "tol": grid.pixel(z),
              **{f"fixed_{i}": v for i, v in enumerate(col.fixed.values())}}
    if isinstance(layer, Generalised):
        params["min_units"] = MIN_PIXELS * 4096 / 512
    statement = sa.text(sql).bindparams(**params)
    if units is not None and col.layer.extents:
        statement = statement.bindparams(sa.bindparam("units", units, type_=ARRAY(sa.Text)))
    return statement


def tile_layers(col: Collection, grid: Grid) -> list[dict]:
    """The tileset's ``layers``: one tile layer, named after the collection, whose
    properties are the layer's from its ``min_zoom`` and a generalised source's below
    (each property says from which zooms in its description)."""
    layer = col.layer
    start = grid.min_zoom(layer.min_zoom)
    props = {name: {**schema, "description": f"from tile matrix {start}"}
             for name, schema in layer.field_schemas().items()}
    bounds = [*(g.min_zoom for g in layer.generalised), layer.min_zoom]
    for g, end in zip(layer.generalised, bounds[1:], strict=False):
        if not set(col.fixed) <= {f.name for f in g.fields}:
            continue
        levels = f"{grid.min_zoom(g.min_zoom)}-{grid.min_zoom(end) - 1}"
        for f in g.fields:
            entry = props.setdefault(f.name, {**f.schema, "description": ""})
            entry["description"] = ", ".join(filter(None, [
                entry["description"], f"tile matrices {levels}: {g.view}"]))
    return [{"id": col.id, "dataType": "vector", "geometryDimension": 2,
             "minTileMatrix": str(first_level(col, grid)),
             "maxTileMatrix": str(MAX_ZOOM - grid.offset),
             "propertiesSchema": {"type": "object", "properties": props}}]


def tilejson(col: Collection, base_url: str) -> dict:
    """TileJSON 3.0 of a collection's WebMercatorQuad tiles (MapLibre's ``url`` source)."""
    layer = col.layer
    fields = {f.name: f.title or f.name for f in layer.fields}
    for g in layer.generalised:
        fields.update({f.name: f.title or f.name for f in g.fields if f.name not in fields})
    bbox = col.bbox or [-180, -85.05, 180, 85.05]
    west, south, east, north = (bbox[:4] if len(bbox) == 4
                                else (bbox[0], bbox[1], bbox[3], bbox[4]))
    minzoom = first_level(col, GRIDS[TMS])
    return {"tilejson": "3.0.0", "name": col.title, "scheme": "xyz",
            "tiles": [f"{base_url}/collections/{col.id}/tiles/{TMS}/{{z}}/{{y}}/{{x}}"],
            "minzoom": minzoom, "maxzoom": MAX_ZOOM,
            "bounds": [west, south, east, north],
            "center": [(west + east) / 2, (south + north) / 2, max(minzoom, 10)],
            "vector_layers": [{"id": col.id, "fields": fields, "minzoom": minzoom,
                               "maxzoom": MAX_ZOOM}]}


def with_tms_1_0_keys(tms: dict) -> dict:
    """A TileMatrixSet document (OGC 2.0, as pygeoapi writes it) with the 1.0 keys beside
    the 2.0 ones: GDAL 3.6 (Debian 12) reads only 1.0 (``supportedCRS``, ``tileMatrix``,
    ``topLeftCorner``) and fails on 2.0 alone ("Cannot parse CRS"). Clients of 2.0 ignore
    the extra members."""
    matrices = tms.get("tileMatrices") or []
    return {**tms, "type": "TileMatrixSetType", "identifier": tms.get("id"),
            "supportedCRS": tms.get("crs"),
            "tileMatrix": [{"type": "TileMatrixType", "identifier": m["id"],
                            "scaleDenominator": m["scaleDenominator"],
                            "topLeftCorner": m["pointOfOrigin"],
                            "tileWidth": m["tileWidth"], "tileHeight": m["tileHeight"],
                            "matrixWidth": m["matrixWidth"],
                            "matrixHeight": m["matrixHeight"]} for m in matrices]}


GDAL_UA = re.compile(r"GDAL/(\d+)\.(\d+)")


def without_vector_tiles(request: Request) -> bool:
    """Whether the client is a GDAL that cannot read vector tiles through its OGC API
    driver yet prefers them to items: before 3.7 GDAL sent no User-Agent (its OGC API
    driver's Accept is ``application/geo+json, application/json``)."""
    agent = request.headers.get("user-agent")
    if agent is None:
        return request.headers.get("accept", "").startswith("application/geo+json")
    found = GDAL_UA.match(agent)
    return bool(found) and (int(found[1]), int(found[2])) < (3, 7)


def tiles_router(service: FeaturesService,
                 tms_delegate: Callable[[Request], Awaitable[Response]] | None = None,
                 collection_delegate: Callable[[Request], Awaitable[Response]] | None = None
                 ) -> APIRouter:
    """The tile routes; ``tms_delegate`` answers ``/TileMatrixSets/{id}`` (pygeoapi's),
    whose JSON gets the 1.0 keys GDAL 3.6 needs (``with_tms_1_0_keys``);
    ``collection_delegate`` answers ``/collections/{id}`` (pygeoapi's), whose JSON loses
    its tilesets links for a GDAL that cannot read them (``without_vector_tiles``)."""
    router = APIRouter()

    if collection_delegate is not None:
        @router.get("/collections/{collection_id}", include_in_schema=False)
        async def collection_document(request: Request) -> Response:
            response = await collection_delegate(request)
            if "json" not in response.headers.get("content-type", ""):
                return response
            response.headers.append("Vary", "User-Agent")
            if response.status_code != 200 or not without_vector_tiles(request):
                return response
            doc = json.loads(response.body)
            doc["links"] = [link for link in doc.get("links") or []
                            if not str(link.get("rel", "")).startswith(TILESETS_REL)]
            headers = {k: v for k, v in response.headers.items()
                       if k.lower() not in ("content-length", "content-type")}
            return JSONResponse(doc, headers=headers,
                                media_type=response.headers["content-type"])

    if tms_delegate is not None:
        @router.get("/TileMatrixSets/{tileMatrixSetId}", include_in_schema=False)
        async def tile_matrix_set(request: Request) -> Response:
            response = await tms_delegate(request)
            if response.status_code != 200 or "json" not in \
                    response.headers.get("content-type", ""):
                return response
            doc = with_tms_1_0_keys(json.loads(response.body))
            headers = {k: v for k, v in response.headers.items()
                       if k.lower() not in ("content-length", "content-type")}
            return JSONResponse(doc, headers=headers)

    cache = TileCache()
    builder = TileBuilder(service, cache)

    def tileset(col: Collection, grid: Grid) -> dict:
        base = f"{service.base_url}/collections/{col.id}/tiles/{grid.id}"
        low, high = first_level(col, grid), MAX_ZOOM - grid.offset
        return {
            "title": f"{col.title} (vector tiles, {grid.id})",
            "dataType": "vector",
            "crs": grid.crs,
            "tileMatrixSetURI": grid.uri,
            "tileMatrixSetLimits": tile_limits(col.bbox, low, high, grid),
            "minZoom": low,
            "maxZoom": high,
            "layers": tile_layers(col, grid),
            "links": [
                {"rel": "self", "type": "application/json", "href": base},
                {"rel": "item", "type": MVT, "templated": True,
                 "href": f"{base}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}?f=mvt"},
                {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                 "type": "application/json",
                 "href": f"{service.base_url}/TileMatrixSets/{grid.id}"},
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
        return JSONResponse({"tilesets": [tileset(col, g) for g in GRIDS.values()],
                             "links": []})

    def grid_or_404(tms: str) -> Grid | JSONResponse:
        grid = GRIDS.get(tms)
        if grid is None:
            return JSONResponse({"code": "NotFound", "description": "tile matrix set not "
                                 f"offered; choose one of {', '.join(GRIDS)}"},
                                status_code=404)
        return grid

    @router.get("/collections/{collection_id}/tiles/{tms}", include_in_schema=False)
    def tileset_metadata(collection_id: str, tms: str, f: str | None = None) -> Response:
        col, grid = collection_or_404(collection_id), grid_or_404(tms)
        for found in (col, grid):
            if isinstance(found, Response):
                return found
        if f == "tilejson":
            if grid.id != TMS:
                return JSONResponse({"code": "InvalidParameterValue", "description":
                                     f"TileJSON describes {TMS} tiles only"},
                                    status_code=400)
            return JSONResponse(tilejson(col, service.base_url))
        return JSONResponse(tileset(col, grid))

    @router.get("/collections/{collection_id}/tiles/{tms}/{z}/{y}/{x}",
                include_in_schema=False)
    async def tile(request: Request, collection_id: str, tms: str, z: int, y: int,
                   x: int) -> Response:
        col, grid = collection_or_404(collection_id), grid_or_404(tms)
        for found in (col, grid):
            if isinstance(found, Response):
                return found
        cols, rows = grid.size(z) if 0 <= z <= MAX_ZOOM else (0, 0)
        if not (0 <= z <= MAX_ZOOM - grid.offset and 0 <= x < cols and 0 <= y < rows):
            return JSONResponse({"code": "InvalidParameterValue",
                                 "description": f"tile outside {grid.id}"},
                                status_code=400)
        key = tile_key(col, grid, z, x, y)
        cached = cache.get(key)
        if cached is not None:
            tile, fresh = cached
            if not fresh:  # refresh in the background; serve stale now
                builder.build(col, z, x, y, grid)
        elif tile_source(col, grid, z) is None:
            tile = Tile.encode(b"", False)
            cache.put(key, tile)
        else:
            try:
                tile = await asyncio.shield(builder.build(col, z, x, y, grid))
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
