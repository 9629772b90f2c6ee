"""How each system spells the same request, and how its answer is checked.

Four systems answer the same five request kinds from one ``Workload``:

* ``items_bbox``    items of 1,000 parcels in a bbox (national collection)
* ``district_page`` the first page of 1,000 parcels of one district
* ``by_id``         one parcel by id
* ``cql``           a CQL2 filter (district, land use, area), limit 100
* ``tiles``         a vector tile, WebMercatorQuad z12-z16, warm: a small set asked again
                    and again (what a cache serves)
* ``tiles_cold``    a vector tile never asked before in that system's run, the same zoom
                    mix for every system (what a first visit costs)

``raw`` is the floor: the SQL that builds the same GeoJSON (or MVT) in PostGIS, run over
psycopg with no HTTP in between. Before a system is timed, a few answers of each kind are
checked (counts, ids, filter semantics), so a fast wrong answer cannot count as fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from psycopg import sql

from bench.workload import CQL_LIMIT, ITEMS_LIMIT, Workload
from cadastre.layers import PARCELS

KINDS = ("items_bbox", "district_page", "by_id", "cql", "tiles", "tiles_cold")
# Kinds whose requests must never repeat within a system's run: each cell takes its own
# slice of the list (``bench.run``).
COLD_KINDS = ("tiles_cold",)
KIND_TITLES = {
    "items_bbox": "items of 1,000 parcels in a bbox",
    "district_page": "first 1,000 parcels of a district",
    "by_id": "one parcel by id",
    "cql": "CQL2 filter, limit 100",
    "tiles": "vector tile z12-z16, warm (a repeated set)",
    "tiles_cold": "vector tile z12-z16, cold (each asked once)",
    "gdal_district": "whole district with GDAL OAPIF (ogr2ogr)",
}


class WrongAnswer(AssertionError):
    """A system answered, but not what was asked."""


def items(work: Workload, kind: str) -> list:
    """The request list of a kind (requests cycle through it)."""
    return {"items_bbox": work.bboxes, "district_page": work.page_districts,
            "by_id": work.ids, "cql": work.filters, "tiles": work.tiles,
            "tiles_cold": work.cold_tiles}[kind]


def _q(params: dict) -> str:
    return "?" + urlencode(params, quote_via=quote)


@dataclass
class HttpSpelling:
    """URL paths for one HTTP system; ``None`` means it does not offer that request."""

    parcels: str  # collection id of all parcels
    district_collection: Callable[[str], str]  # GDAL layer for one district
    district_page: Callable[[str], str]
    tile: Callable[[int, int, int], str] | None
    cql_extra: dict  # e.g. {"filter-lang": "cql2-text"}

    def path(self, kind: str, item: object) -> str | None:
        base = f"/collections/{self.parcels}/items"
        if kind == "items_bbox":
            return base + _q({"bbox": ",".join(map(str, item)), "limit": ITEMS_LIMIT})
        if kind == "district_page":
            return self.district_page(item)
        if kind == "by_id":
            return f"{base}/{item}"
        if kind == "cql":
            return base + _q({**self.cql_extra, "filter": item.cql2_text(),
                              "limit": CQL_LIMIT})
        if kind in ("tiles", "tiles_cold"):
            return self.tile(*item) if self.tile else None
        raise ValueError(kind)


def platform_spelling(tile_template: str | None) -> HttpSpelling:
    """The platform: per-district collections, and tiles when it offers them.

    ``tile_template`` is a path with {z}/{y}/{x} found by probing (None: no tiles).
    """
    tile = None
    if tile_template:
        def tile(z: int, x: int, y: int) -> str:
            return tile_template.format(z=z, x=x, y=y)
    return HttpSpelling(
        parcels="parcels",
        district_collection=lambda d: f"parcels-{d}",
        district_page=lambda d: f"/collections/parcels-{d}/items" + _q({"limit": ITEMS_LIMIT}),
        tile=tile, cql_extra={})


def tipg_spelling(view: str) -> HttpSpelling:
    return HttpSpelling(
        parcels="publish.parcels",
        district_collection=lambda d: f"bench.{view}",
        district_page=lambda d: "/collections/publish.parcels/items"
        + _q({"district_code": d, "limit": ITEMS_LIMIT}),
        tile=lambda z, x, y: f"/collections/publish.parcels/tiles/WebMercatorQuad/{z}/{x}/{y}",
        cql_extra={"filter-lang": "cql2-text"})


def pygeoapi_spelling(with_tiles: bool) -> HttpSpelling:
    return HttpSpelling(
        parcels="parcels",
        district_collection=lambda d: f"parcels-{d}",
        district_page=lambda d: "/collections/parcels/items"
        + _q({"district_code": d, "limit": ITEMS_LIMIT}),
        tile=(lambda z, x, y: f"/collections/parcels/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt")
        if with_tiles else None,
        cql_extra={"filter-lang": "cql2-text"})


# --------------------------------------------------------------------------- answers


def _features(body: bytes) -> list[dict]:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise WrongAnswer(f"not JSON: {body[:120]!r}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        raise WrongAnswer(f"not a FeatureCollection: {str(doc)[:160]}")
    return doc["features"]


def check(kind: str, item: object, body: bytes, work: Workload) -> None:
    """Raise WrongAnswer unless ``body`` answers ``item`` of ``kind``."""
    if kind in ("tiles", "tiles_cold"):
        if not body:
            raise WrongAnswer("empty tile where parcels are")
        return
    if kind == "by_id":
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise WrongAnswer(f"not JSON: {body[:120]!r}") from exc
        if str(doc.get("id")) != str(item) or doc.get("geometry") is None:
            raise WrongAnswer(f"asked for id {item}, got {str(doc)[:160]}")
        return
    feats = _features(body)
    if kind == "items_bbox" and len(feats) != ITEMS_LIMIT:
        raise WrongAnswer(f"expected {ITEMS_LIMIT} features in the bbox, got {len(feats)}")
    if kind == "district_page":
        want = min(ITEMS_LIMIT, work.districts[item])
        if len(feats) != want or any(f["properties"].get("district_code") != item
                                     for f in feats):
            raise WrongAnswer(f"expected {want} parcels of district {item}, got "
                              f"{len(feats)} (or others)")
    if kind == "cql":
        if not feats:
            raise WrongAnswer(f"no feature matched {item.cql2_text()}")
        for f in feats:
            p = f["properties"]
            if (p.get("district_code") != item.district or p.get("land_use") != "ODT"
                    or float(p.get("area_m2")) <= item.min_area):
                raise WrongAnswer(f"{item.cql2_text()} returned {p}")


# --------------------------------------------------------------------------- raw SQL


def _feature_sql() -> sql.Composed:
    props = sql.SQL(", ").join(
        sql.SQL("{}, p.{}").format(sql.Literal(f.name), sql.Identifier(f.name))
        for f in PARCELS.fields)
    return sql.SQL(
        "json_build_object('type', 'Feature', 'id', p.id, "
        "'geometry', ST_AsGeoJSON(p.geom, 8)::json, "
        "'properties', json_build_object({}))").format(props)


def _page_sql(where: str, limit: int) -> sql.Composed:
    return sql.SQL(
        "SELECT json_build_object('type', 'FeatureCollection', "
        "'features', coalesce(json_agg(f.feature ORDER BY f.id), '[]'::json), "
        "'numberReturned', count(*))::text, count(*), max(f.id) "
        "FROM (SELECT p.id, {feature} AS feature FROM publish.parcels p "
        "WHERE {where} ORDER BY p.id LIMIT {limit}) f").format(
            feature=_feature_sql(), where=sql.SQL(where), limit=sql.Literal(limit))


RAW_ITEMS_BBOX = _page_sql("ST_Intersects(p.geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
                           ITEMS_LIMIT)
RAW_DISTRICT_PAGE = _page_sql("p.district_code = %s", ITEMS_LIMIT)
RAW_DISTRICT_AFTER = _page_sql("p.district_code = %s AND p.id > %s", ITEMS_LIMIT)
RAW_CQL = _page_sql("p.district_code = %s AND p.land_use = 'ODT' AND p.area_m2 > %s",
                    CQL_LIMIT)
RAW_BY_ID = sql.SQL("SELECT {}::text FROM publish.parcels p WHERE p.id = %s").format(
    _feature_sql())
RAW_TILE = sql.SQL(
    "WITH e AS (SELECT ST_TileEnvelope(%s, %s, %s) AS env) "
    "SELECT ST_AsMVT(t, 'parcels', 4096, 'geom') FROM ("
    "  SELECT {cols}, ST_AsMVTGeom(ST_Transform(p.geom, 3857), e.env, 4096, 256, true) "
    "         AS geom "
    "    FROM publish.parcels p, e WHERE p.geom && ST_Transform(e.env, 4326)) t").format(
        cols=sql.SQL(", ").join([sql.SQL("p.id")] + [
            sql.SQL("p.{}").format(sql.Identifier(f.name)) for f in PARCELS.fields]))


def raw_statement(kind: str, item: object) -> tuple[sql.Composable, tuple]:
    if kind == "items_bbox":
        return RAW_ITEMS_BBOX, tuple(item)
    if kind == "district_page":
        return RAW_DISTRICT_PAGE, (item,)
    if kind == "by_id":
        return RAW_BY_ID, (item,)
    if kind == "cql":
        return RAW_CQL, (item.district, item.min_area)
    if kind in ("tiles", "tiles_cold"):
        z, x, y = item
        return RAW_TILE, (z, x, y)
    raise ValueError(kind)


def raw_body(kind: str, value: object) -> bytes:
    """The first column of a raw result as bytes, for ``check``."""
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return str(value).encode()
