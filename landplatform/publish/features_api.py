"""The features path for JSON clients (GDAL/QGIS, OWSLib, apps): our own route in front of
pygeoapi's, for the collections our provider serves.

Why: pygeoapi decodes the provider's features into Python objects, re-encodes them, counts
every match on every page and pages by offset. Here PostGIS builds the page as JSON text
and we send those bytes as they are; ``next`` links page by key (``cursor``) so the last
page of a district costs what the first does; ``numberMatched`` is exact where that is
cheap (the per-district counts the loader keeps, a short page, or a count that finishes
within a small budget) and omitted otherwise, as OGC API Features allows.

HTML, JSON-LD and anything this route does not handle are passed to pygeoapi.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pyproj import CRS, Transformer
from sqlalchemy.engine import Compiled, Engine
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from landplatform.publish import cql
from landplatform.publish.cql import Filter
from landplatform.publish.engine import read
from landplatform.publish.layers import Counts, Layer
from landplatform.publish.query import (
    CRS84_URI,
    FeatureQuery,
    QueryError,
    at_time,
    target_crs,
)

GEOJSON = "application/geo+json"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
MAX_PARAM_CHARS = 8192  # a filter longer than this is not a land officer's query
# a POST search's CQL2 JSON body: a polygon of a few thousand vertices fits
MAX_FILTER_BODY = 256 * 1024
# media types of a POST search's body (pygeoapi's OpenAPI says application/json, which
# on a writable collection is a create: there, a search says one of these)
CQL2_JSON_TYPES = ("application/query-cql-json", "application/cql2+json")
# numberMatched of a filtered first page is counted in the page's own statement, up to
# this many matches; past it the count stops and numberMatched is omitted. Bounded work
# (a few ms at most) and no extra round trip, where an unbounded count of a national
# filter would cost more than the page.
COUNT_CAP = 20_000
SUMMARY_TTL_S = 10.0
KNOWN = {"f", "limit", "offset", "cursor", "bbox", "bbox-crs", "crs", "properties",
         "skipGeometry", "sortby", "filter", "filter-lang", "filter-crs", "datetime",
         "resulttype", "lang"}


class Unavailable(Exception):
    """The database cannot take the request now (pool exhausted or server down)."""


@dataclass(frozen=True)
class Collection:
    id: str
    layer: Layer
    table: sa.Table
    fixed: dict[str, str]
    crs: tuple[str, ...]
    title: str
    frozen: str  # the layer declaration as the config carries it
    bbox: list[float] | None = None  # the extent the config declares (CRS84)


def collections_from_config(config: dict) -> dict[str, Collection]:
    """The feature collections our provider serves, from the generated pygeoapi config."""
    from landplatform.publish.provider import layer_from_config

    found = {}
    for cid, res in config["resources"].items():
        for prov in res.get("providers", []):
            if prov["type"] == "feature" and prov["name"].endswith("PostGISProvider"):
                data = prov["data"]
                declaration = {k: v for k, v in data.items() if k != "filter"}
                frozen = json.dumps(declaration, sort_keys=True)
                layer, table = layer_from_config(frozen)
                bbox = ((res.get("extents") or {}).get("spatial") or {}).get("bbox")
                found[cid] = Collection(cid, layer, table, dict(data.get("filter") or {}),
                                        tuple(prov.get("crs") or [CRS84_URI]), res["title"],
                                        frozen, list(bbox) if bbox else None)
    return found


def _exception(status: int, code: str, description: str, **headers: str) -> JSONResponse:
    return JSONResponse({"code": code, "description": description}, status_code=status,
                        headers=headers or None)


def wants_pygeoapi(fmt: str | None, accept: str) -> bool:
    """Whether a request asks for what pygeoapi renders (HTML, JSON-LD) rather than the
    GeoJSON this path builds: by ``f``, else by an Accept header that prefers HTML."""
    if fmt is not None:
        return fmt.lower() not in ("json", "geojson")
    return "text/html" in accept and "json" not in accept


def _wants_pygeoapi(request: Request) -> bool:
    return wants_pygeoapi(request.query_params.get("f"), request.headers.get("accept", ""))


class FeaturesService:
    """Answers items requests for the collections in ``collections``."""

    def __init__(self, engine: Engine, collections: dict[str, Collection], base_url: str,
                 default_limit: int, max_limit: int) -> None:
        self.engine = engine
        self.collections = collections
        self.base_url = base_url
        self.default_limit = default_limit
        self.max_limit = max_limit
        # Layer.counts -> (when read, {key value: count})
        self._counts: dict[Counts, tuple[float, dict[str, int]]] = {}
        self._item_cache: dict[tuple[str, str | None], Compiled] = {}

    # -- parsing ----------------------------------------------------------------------
    def parse(self, col: Collection, params: dict[str, str],
              body_filter: bool = False) -> tuple[FeatureQuery, dict]:
        """``body_filter``: ``filter`` came in a POST body (its own size bound)."""
        layer = col.layer
        types = layer.field_types()
        unknown = [k for k in params if k not in KNOWN and k not in types]
        if unknown:
            raise QueryError(f"unknown query parameter(s): {', '.join(sorted(unknown))}")
        for name, value in params.items():
            if "\x00" in value:
                raise QueryError(f"{name} contains a NUL character")
            if len(value) > MAX_PARAM_CHARS and not (body_filter and name == "filter"):
                raise QueryError(f"{name} is longer than {MAX_PARAM_CHARS} characters")
        if "bbox-crs" in params and "bbox" not in params:
            raise QueryError("bbox-crs given without bbox")
        if ("filter-lang" in params or "filter-crs" in params) and "filter" not in params:
            raise QueryError("filter-lang/filter-crs given without filter")
        opts: dict = {"limit": self.default_limit, "offset": 0, "after": None,
                      "hits": params.get("resulttype") == "hits"}
        if "limit" in params:
            opts["limit"] = min(_positive_int(params["limit"], "limit"), self.max_limit)
        if "offset" in params:
            opts["offset"] = _positive_int(params["offset"], "offset", zero=True)
        if "cursor" in params:
            opts["after"] = (_positive_int(params["cursor"], "cursor", zero=True)
                             if layer.id_type == "integer" else params["cursor"])
        crs_uri = params.get("crs")
        if crs_uri is not None and crs_uri not in col.crs:
            raise QueryError(f"crs {crs_uri} is not offered by this collection; "
                             f"choose one of {', '.join(col.crs)}")
        fq = FeatureQuery(layer, col.table, fixed=col.fixed, crs_uri=crs_uri)
        if "bbox" in params:
            fq.bbox = _bbox(params["bbox"], params.get("bbox-crs"), col.crs)
        if "properties" in params:
            names = [n for n in params["properties"].split(",") if n]
            bad = [n for n in names if n not in types]
            if bad:
                raise QueryError(f"unknown properties: {', '.join(bad)}")
            fq.select = names
        if "skipGeometry" in params:
            fq.skip_geometry = params["skipGeometry"].lower() in ("true", "1")
        if "sortby" in params:
            for item in filter(None, params["sortby"].split(",")):
                desc, name = item.startswith("-"), item.lstrip("+-")
                if name not in types:
                    raise QueryError(f"cannot sort by unknown property {name!r}")
                fq.sortby.append((name, desc))
            if opts["after"] is not None:
                raise QueryError("cursor pages in id order; use offset with sortby")
        if "filter" in params:
            fq.filter = _cql2(params["filter"], params.get("filter-lang"),
                              params.get("filter-crs"), col.crs)
        if "datetime" in params:
            at_time(fq, params["datetime"], col.frozen)
        fq.properties = [(k, v) for k, v in params.items() if k in types]
        for name, value in fq.properties:
            fq.typed(name, value)  # reject badly typed values now, as a 400
        return fq, opts

    # -- execution --------------------------------------------------------------------
    def execute(self, fn):  # noqa: ANN001, ANN202
        try:
            return read(self.engine, fn)
        except PoolTimeout as exc:
            raise Unavailable("all database connections are busy") from exc
        except OperationalError as exc:
            raise Unavailable("the database is not reachable") from exc
        except DataError as exc:  # a value PostgreSQL cannot take (range, encoding)
            raise QueryError("a parameter value is out of range or malformed") from exc

    def prune(self, fq: FeatureQuery) -> None:
        """Name the units a bbox request can meet (``Layer.extents``), one small query,
        so the page statement plans only their partitions (see ``Extents``)."""
        if fq.prunable():
            statement = fq.layer.extents.statement(tuple(fq.bbox))
            fq.units = self.execute(lambda c: list(c.execute(statement).scalars()))

    def _summary_count(self, col: Collection, fq: FeatureQuery) -> int | None:
        """Exact counts of whole collections of a layer that declares where they come
        from (``Layer.counts``: a small view its loader keeps), cached briefly."""
        counts = col.layer.counts
        if counts is None or fq.bbox or fq.properties or fq.filter is not None or fq.interval:
            return None
        fixed = set(col.fixed)
        if fixed - {counts.key}:
            return None
        cached = self._counts.get(counts)
        if cached is None or time.monotonic() - cached[0] > SUMMARY_TTL_S:
            table = sa.table(counts.view.split(".")[1], sa.column(counts.key),
                             sa.column(counts.column), schema=counts.view.split(".")[0])
            rows = self.execute(lambda c: c.execute(
                sa.select(table.c[counts.key], table.c[counts.column])).all())
            cached = (time.monotonic(), {r[0]: int(r[1]) for r in rows})
            self._counts[counts] = cached
        by_key = cached[1]
        if counts.key in col.fixed:
            return by_key.get(col.fixed[counts.key], 0)
        return sum(by_key.values())

    def search(self, col: Collection, params: dict[str, str], body: bytes) -> Response:
        """POST items with a CQL2 JSON body: the same answer as GET with
        ``filter-lang=cql2-json`` and the JSON in ``filter`` (the next link is that GET)."""
        if "filter" in params or params.get("filter-lang") not in (None, "cql2-json"):
            return _exception(400, "InvalidParameterValue", "a POST search carries its "
                              "filter in the body, as CQL2 JSON")
        try:
            tree = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return _exception(400, "InvalidParameterValue",
                              "the body is not JSON (a CQL2 JSON filter)")
        text = json.dumps(tree, ensure_ascii=False, separators=(",", ":"))
        return self.items(col, {**params, "filter": text, "filter-lang": "cql2-json"},
                          body_filter=True)

    def items(self, col: Collection, params: dict[str, str],
              body_filter: bool = False) -> Response:
        try:
            fq, opts = self.parse(col, params, body_filter)
            self.prune(fq)
            matched = self._summary_count(col, fq)
            first_page = opts["after"] is None and opts["offset"] == 0
            if opts["hits"]:
                if matched is None:
                    matched = self.execute(lambda c: c.execute(fq.count_stmt()).scalar_one())
                return Response(json.dumps({"type": "FeatureCollection", "features": [],
                                            "numberMatched": matched, "numberReturned": 0}),
                                media_type=GEOJSON)
            cap = COUNT_CAP if matched is None and first_page else None
            sql, values = fq.page_sql(self.engine.dialect, opts["limit"],
                                      offset=opts["offset"], after=opts["after"],
                                      count_cap=cap)
            features, returned, last, capped = self.execute(
                lambda c: c.exec_driver_sql(sql, values).one())
            if cap is not None:
                if returned < opts["limit"]:
                    matched = returned  # a short first page is the whole answer
                elif capped is not None and capped <= cap:
                    matched = capped
        except QueryError as exc:
            return _exception(400, "InvalidParameterValue", str(exc))
        except Unavailable as exc:
            return _exception(503, "ServiceUnavailable", str(exc), **{"Retry-After": "2"})
        links = self._links(col, params, returned == opts["limit"], last, opts)
        head = '{"type":"FeatureCollection","features":'
        tail = {"numberReturned": returned, "links": links}
        if matched is not None:
            tail["numberMatched"] = matched
        body = head + features + "," + json.dumps(tail)[1:]
        headers = {"Content-Crs": f"<{fq.crs_uri or CRS84_URI}>", "Link": link_header(links)}
        return Response(body, media_type=GEOJSON, headers=headers)

    def item(self, col: Collection, fid: str, params: dict[str, str]) -> Response:
        try:
            unknown = [k for k in params if k not in ("f", "crs", "lang")]
            if unknown:
                raise QueryError(f"unknown query parameter(s): {', '.join(unknown)}")
            crs_uri = params.get("crs")
            if crs_uri is not None and crs_uri not in col.crs:
                raise QueryError(f"crs {crs_uri} is not offered by this collection")
            if col.layer.id_type == "integer":
                if not (fid.isascii() and fid.isdigit()) or len(fid) > 18:
                    return _exception(404, "NotFound", "identifier not found")
                key: object = int(fid)
            else:
                key = fid
            sql = self._item_sql(col, crs_uri)
            params = sql.construct_params({"fid": key})
            features, returned, _, _ = self.execute(
                lambda c: c.exec_driver_sql(sql.string, params).one())
        except QueryError as exc:
            return _exception(400, "InvalidParameterValue", str(exc))
        except Unavailable as exc:
            return _exception(503, "ServiceUnavailable", str(exc), **{"Retry-After": "2"})
        if not returned:
            return _exception(404, "NotFound", "identifier not found")
        feature = features[1:-1]  # the one element of the JSON array
        base = f"{self.base_url}/collections/{col.id}"
        links = [{"rel": "self", "type": GEOJSON, "href": f"{base}/items/{fid}?f=json"},
                 {"rel": "alternate", "type": "text/html", "href": f"{base}/items/{fid}?f=html"},
                 {"rel": "collection", "type": "application/json", "href": base}]
        body = feature[:-1] + ',"links":' + json.dumps(links) + "}"
        return Response(body, media_type=GEOJSON,
                        headers={"Content-Crs": f"<{crs_uri or CRS84_URI}>",
                                 "Link": link_header(links)})

    def _item_sql(self, col: Collection, crs_uri: str | None) -> Compiled:
        """The one-feature statement of a collection and CRS, compiled once.

        Building and compiling the SQLAlchemy expression costs several times what PostgreSQL
        spends finding one parcel by its key; only the id changes between requests.
        """
        key = (col.id, crs_uri)
        compiled = self._item_cache.get(key)
        if compiled is None:
            fixed = {**col.fixed, col.layer.id_field: sa.bindparam("fid")}
            fq = FeatureQuery(col.layer, col.table, fixed=fixed, crs_uri=crs_uri)
            compiled = self._item_cache[key] = fq.page_stmt(1).compile(
                dialect=self.engine.dialect)
        return compiled

    def _links(self, col: Collection, params: dict[str, str], full: bool, last: object,
               opts: dict) -> list[dict]:
        base = f"{self.base_url}/collections/{col.id}/items"
        query = {k: v for k, v in params.items() if k not in ("f", "cursor", "offset")}
        links = [
            {"rel": "self", "type": GEOJSON, "href": f"{base}?{urlencode({**params})}"},
            {"rel": "alternate", "type": "text/html",
             "href": f"{base}?{urlencode({**query, 'f': 'html'})}"},
            {"rel": "collection", "type": "application/json",
             "href": f"{self.base_url}/collections/{col.id}"},
            {"rel": QUERYABLES_REL, "type": "application/schema+json",
             "href": f"{self.base_url}/collections/{col.id}/queryables"},
        ]
        if full:
            # sorted pages continue by offset; id-ordered pages by key
            nxt = ({**query, "offset": opts["offset"] + opts["limit"]} if "sortby" in params
                   else {**query, "cursor": last})
            links.append({"rel": "next", "type": GEOJSON,
                          "href": f"{base}?{urlencode({**nxt, 'f': 'json'})}"})
        return links


def link_header(links: list[dict]) -> str:
    """The body's links again as an HTTP ``Link`` header (RFC 8288): clients that read
    headers only (HEAD requests, the OGC test suites, caches) find self, alternate and next
    without parsing the page."""
    return ", ".join(f'<{lk["href"]}>; rel="{lk["rel"]}"; type="{lk["type"]}"' for lk in links)


def _positive_int(value: str, name: str, zero: bool = False) -> int:
    try:
        number = int(value)
    except ValueError:
        raise QueryError(f"{name} must be an integer, got {value!r}") from None
    if number < (0 if zero else 1):
        raise QueryError(f"{name} must be {'>= 0' if zero else '>= 1'}")
    return number


def _bbox(text: str, bbox_crs: str | None, offered: tuple[str, ...]) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise QueryError("bbox must be 4 or 6 comma-separated numbers") from None
    if len(values) not in (4, 6):
        raise QueryError("bbox must be 4 or 6 comma-separated numbers")
    minx, miny, maxx, maxy = (values[0], values[1], values[3], values[4]) \
        if len(values) == 6 else values
    if minx > maxx or miny > maxy:
        raise QueryError("bbox lower corner must be below and left of the upper corner")
    if bbox_crs and bbox_crs != CRS84_URI:
        if bbox_crs not in offered:
            raise QueryError(f"bbox-crs {bbox_crs} is not offered by this collection")
        srid, north_first, _ = target_crs(bbox_crs)
        if north_first:
            minx, miny, maxx, maxy = miny, minx, maxy, maxx
        tr = Transformer.from_crs(CRS.from_epsg(srid), CRS.from_epsg(4326), always_xy=True)
        minx, miny, maxx, maxy = tr.transform_bounds(minx, miny, maxx, maxy)
    return [minx, miny, maxx, maxy]


def _cql2(text: str, lang: str | None, filter_crs: str | None,
          offered: tuple[str, ...]) -> Filter:
    """The request's filter: cql2-text by default, cql2-json with ``filter-lang``; its
    geometries in CRS84 unless ``filter-crs`` names another CRS the collection offers."""
    if lang not in (None, "cql2-text", "cql2-json"):
        raise QueryError("filter-lang must be cql2-text or cql2-json")
    if filter_crs not in (None, CRS84_URI) and filter_crs not in offered:
        raise QueryError(f"filter-crs {filter_crs} is not offered by this collection; "
                         f"choose one of {', '.join(offered)}")
    try:
        return cql.parse(text, lang or "cql2-text", filter_crs)
    except cql.FilterError as exc:
        raise QueryError(str(exc)) from None


def capped(request: Request, limit: int) -> Request:
    """``request`` with its ``limit`` at most ``limit``: an HTML page is a map and a table
    a person reads, rendered in Python (ten thousand features took a core for seconds)."""
    params = request.query_params.multi_items()
    asked = next((v for k, v in params if k == "limit"), None)
    if asked is None or not (asked.isascii() and asked.isdigit()) or int(asked) <= limit:
        return request
    query = urlencode([(k, str(limit) if k == "limit" else v) for k, v in params])
    return Request({**request.scope, "query_string": query.encode()}, request.receive)


def features_router(service: FeaturesService, delegate,  # noqa: ANN001
                    html_limit: int) -> APIRouter:
    """Routes for items and item; ``delegate(request)`` hands a request to pygeoapi (HTML
    pages of at most ``html_limit`` items)."""
    from landplatform.publish.provider import install_filter_parser

    install_filter_parser()  # the HTML pages' filters are parsed as ours are
    router = APIRouter()

    # HEAD answers as GET does (same headers, no body): uvicorn drops the body
    @router.api_route("/collections/{collection_id}/items", methods=["GET", "HEAD"],
                      include_in_schema=False)
    async def items(request: Request, collection_id: str) -> Response:
        col = service.collections.get(collection_id)
        if col is None or _wants_pygeoapi(request):
            return await delegate(capped(request, html_limit))
        params = dict(request.query_params)
        return await run_in_threadpool(service.items, col, params)

    @router.api_route("/collections/{collection_id}/items/{item_id}", methods=["GET", "HEAD"],
                      include_in_schema=False)
    async def item(request: Request, collection_id: str, item_id: str) -> Response:
        col = service.collections.get(collection_id)
        if col is None or _wants_pygeoapi(request):
            return await delegate(request)
        params = dict(request.query_params)
        return await run_in_threadpool(service.item, col, item_id, params)

    return router
