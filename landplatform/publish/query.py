"""Compile a features request into one parameterised SQL statement that PostGIS answers
with JSON. Shared by the pygeoapi provider (HTML pages, OpenAPI) and the fast JSON route.

Nothing here formats SQL text from request values: every value becomes a bound parameter
through SQLAlchemy Core, and names are checked against the layer's declared fields.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import sqlalchemy as sa
from pyproj import CRS
from sqlalchemy.dialects.postgresql import JSON, aggregate_order_by
from sqlalchemy.engine import Compiled, Dialect

from landplatform.publish import cql
from landplatform.publish.cql import Filter
from landplatform.publish.layers import Layer

EPSG_URI = re.compile(r"/EPSG/\d+/(\d+)$")
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


class QueryError(ValueError):
    """The request cannot be answered as asked (a 400, with this message)."""


@lru_cache
def target_crs(uri: str) -> tuple[int, bool, int]:
    """(srid, northing-first axis order, decimals) for an OGC CRS URI."""
    if uri.endswith("/OGC/1.3/CRS84"):
        return 4326, False, 8
    match = EPSG_URI.search(uri)
    if not match:
        raise QueryError(f"unsupported CRS {uri}")
    crs = CRS.from_epsg(int(match.group(1)))
    north_first = crs.axis_info[0].direction in ("north", "south")
    return int(match.group(1)), north_first, 8 if crs.is_geographic else 3


def parse_datetime(value: str) -> tuple[datetime | None, datetime | None]:
    """An OGC API ``datetime``: an instant, a date (its whole day) or an interval
    ``start/end`` with ``..`` (or nothing) for an open end; times without a zone are UTC.
    (start, end), inclusive; ``None``: open."""
    def instant(text_: str, end: bool) -> datetime | None:
        text_ = text_.strip()
        if text_ in ("", ".."):
            return None
        try:
            if len(text_) == 10:
                day = datetime.combine(date.fromisoformat(text_), time(), tzinfo=UTC)
                return day + timedelta(days=1) - timedelta(microseconds=1) if end else day
            moment = datetime.fromisoformat(text_.replace("Z", "+00:00"))
        except ValueError:
            raise QueryError(f"datetime {value!r} is not an RFC 3339 date-time, a date, "
                             "or an interval of them ('start/end', '..' for open)") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    if "/" in value:
        start_text, _, end_text = value.partition("/")
        start, end = instant(start_text, False), instant(end_text, True)
        if start is None and end is None:
            raise QueryError("a datetime interval needs at least one end")
        if start is not None and end is not None and end < start:
            raise QueryError("the datetime interval ends before it starts")
        return start, end
    return instant(value, False), instant(value, True)


@dataclass
class FeatureQuery:
    """What a client asked of one collection, already parsed and checked."""

    layer: Layer
    table: sa.Table
    fixed: dict[str, str] = field(default_factory=dict)
    bbox: list[float] | None = None
    properties: list[tuple[str, str]] = field(default_factory=list)
    filter: Filter | None = None  # CQL2 (``cql.parse``)
    sortby: list[tuple[str, bool]] = field(default_factory=list)  # (name, descending)
    select: list[str] | None = None
    skip_geometry: bool = False
    crs_uri: str | None = None
    # validity asked for with ``datetime``: the table is then the layer's versions view
    interval: tuple[datetime | None, datetime | None] | None = None
    # the units (``Layer.extents``) the bbox can meet: names the partitions to plan
    units: list[str] | None = None

    def prunable(self) -> bool:
        """Whether the units this request can meet are worth looking up first: a bbox
        over the current features of a layer that keeps its units' extents, not already
        fixed to one unit."""
        extents = self.layer.extents
        return (bool(self.bbox) and extents is not None and self.interval is None
                and extents.key not in self.fixed)

    # -- WHERE ------------------------------------------------------------------------
    def typed(self, name: str, value: str) -> object:
        kind = self.layer.field_types().get(name)
        if kind is None:
            raise QueryError(f"unknown property {name!r}")
        try:
            if kind == "integer":
                number = int(value)
                if abs(number) >= 2 ** 63:
                    raise ValueError
                return number
            if kind == "number":
                number = float(value)
                if not math.isfinite(number):
                    raise ValueError
                return number
            if kind == "date":
                return date.fromisoformat(value)
            if kind == "date-time":
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise QueryError(f"{name} must be a {kind}, got {value!r}") from None
        if kind == "boolean":
            return str(value).lower() in ("true", "1", "yes")
        return value

    def conditions(self) -> list[sa.ColumnElement]:
        t = self.table
        conds: list[sa.ColumnElement] = [t.c[k] == v for k, v in self.fixed.items()]
        conds += [t.c[name] == self.typed(name, value) for name, value in self.properties]
        if self.interval is not None and self.layer.temporal is not None:
            lo, hi = self.interval
            start, end = t.c[self.layer.temporal.start], t.c[self.layer.temporal.end]
            if hi is not None:
                conds.append(start <= hi)
            if lo is not None:  # validity is [start, end); an instant (start = end) is in
                conds.append(sa.or_(end.is_(None), end >= lo if start is end else end > lo))
        if self.bbox:
            minx, miny, maxx, maxy = self.bbox
            if not (all(math.isfinite(v) for v in self.bbox) and -180 <= minx <= maxx <= 180
                    and -90 <= miny <= maxy <= 90):
                raise QueryError("bbox must be longitude/latitude within -180..180, -90..90 "
                                 "with the lower corner first")
            # OGC API Features Part 1: only features whose geometry intersects the bbox
            # are in the result, so a layer without geometry has none (a NULL geometry
            # fails ST_Intersects, which is NULL, not true)
            if self.layer.geom_field:
                envelope = sa.func.ST_MakeEnvelope(minx, miny, maxx, maxy, 4326)
                conds.append(sa.func.ST_Intersects(t.c[self.layer.geom_field], envelope))
            else:
                conds.append(sa.false())
        if self.units is not None and self.layer.extents is not None:
            # no unit meets the bbox: SQLAlchemy renders an empty IN as false
            conds.append(t.c[self.layer.extents.key].in_(self.units))
        if self.filter is not None:
            try:
                conds.append(cql.condition(self.filter, self.layer, t))
            except cql.FilterError as exc:
                raise QueryError(str(exc)) from None
        return conds

    def order(self, src: sa.FromClause | None = None) -> list[sa.ColumnElement]:
        c = (src if src is not None else self.table).c
        keys = [c[name].desc() if desc else c[name].asc() for name, desc in self.sortby]
        return keys + [c[self.layer.id_field]]

    # -- SELECT -----------------------------------------------------------------------
    def feature(self, src: sa.FromClause) -> sa.ColumnElement:
        """json_build_object of one GeoJSON Feature over ``src``'s row."""
        names = [f.name for f in self.layer.fields if not self.select or f.name in self.select]
        props = sa.func.json_build_object(*[x for n in names
                                            for x in (sa.literal(n), src.c[n])])
        geometry: sa.ColumnElement = sa.null()
        if self.layer.geom_field and not self.skip_geometry:
            geom = src.c[self.layer.geom_field]
            decimals = 8
            if self.crs_uri:
                srid, north_first, decimals = target_crs(self.crs_uri)
                if srid != 4326:
                    geom = sa.func.ST_Transform(geom, srid)
                if north_first:
                    geom = sa.func.ST_FlipCoordinates(geom)
            geometry = sa.cast(sa.func.ST_AsGeoJSON(geom, decimals), JSON)
        return sa.func.json_build_object(
            sa.literal("type"), sa.literal("Feature"), sa.literal("id"),
            src.c[self.layer.id_field], sa.literal("geometry"), geometry,
            sa.literal("properties"), props)

    def count_stmt(self) -> sa.Select:
        return sa.select(sa.func.count()).select_from(self.table).where(*self.conditions())

    def page_stmt(self, limit: int, *, offset: int = 0, after: object | None = None,
                  count_cap: int | None = None) -> sa.Select:
        """One row: (features JSON text, returned count, last id, capped count) for one page.

        ``count_cap``: also count the matches, stopping at ``count_cap + 1`` (so a result
        above the cap means "more than the cap", and the work is bounded); else NULL.

        ``after`` pages by key (the id of the previous page's last feature; id order only),
        which costs the same on page 1,000 as on page 1; ``offset`` serves clients that
        send it and sorted requests.
        """
        return self._page(self.conditions(), limit, offset or None, after,
                          None if count_cap is None else count_cap + 1)

    def page_sql(self, dialect: Dialect, limit: int, *, offset: int = 0,
                 after: object | None = None,
                 count_cap: int | None = None) -> tuple[str, dict[str, object]]:
        """``page_stmt`` as (SQL text, parameters) for ``exec_driver_sql``, built cheaply.

        Building and compiling the whole page statement (the GeoJSON object of every
        field, the aggregation, the count probe) cost about 4 ms of CPU per request, ten
        times what PostgreSQL spends on a small page. Only the WHERE clause and four
        numbers change between requests of the same shape, so the rest is compiled once
        per shape (collection, CRS, properties, sortby, which of offset/cursor/count) into
        a template and only the conditions are compiled per request, with their values
        bound as parameters as before.
        """
        conds = self.conditions()
        # render_postcompile: an IN list's parameters are expanded here (one per value),
        # not left as a placeholder the template's text would carry to PostgreSQL
        where = (sa.and_(*conds) if conds else sa.true()).compile(
            dialect=dialect, compile_kwargs={"render_postcompile": True})
        template = self._template(dialect, bool(offset), after is not None,
                                  count_cap is not None)
        params = bound_params(where)
        params.update(lis_limit=limit, lis_offset=offset, lis_after=after,
                      lis_cap=None if count_cap is None else count_cap + 1)
        # parenthesised: a filter's top-level OR must not bind to the cursor's AND
        return template.replace(_MARK["where"], f"({where.string})"), params

    def _template(self, dialect: Dialect, offset: bool, after: bool, cap: bool) -> str:
        key = (id(self.table), self.table.fullname, tuple(self.select or ()),
               self.select is None, self.skip_geometry, self.crs_uri, tuple(self.sortby),
               offset, after, cap, dialect.name)
        sql = _TEMPLATES.get(key)
        if sql is None:
            marks = {k: sa.literal_column(v) for k, v in _MARK.items()}
            stmt = self._page([sa.text(_MARK["where"])], marks["limit"],
                              marks["offset"] if offset else None,
                              marks["after"] if after else None,
                              marks["cap"] if cap else None)
            # Constants (the property names of the JSON object, decimals, SRIDs) are
            # ours, not the client's: they are written into the template as literals.
            sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            for name in ("limit", "offset", "after", "cap"):
                sql = sql.replace(_MARK[name], f"%(lis_{name})s")
            if len(_TEMPLATES) >= MAX_TEMPLATES:  # properties= makes shapes unbounded
                _TEMPLATES.clear()
            _TEMPLATES[key] = sql
        return sql

    def _page(self, conds: list, limit: object, offset: object | None, after: object | None,
              cap: object | None) -> sa.Select:
        t = self.table
        capped: sa.ColumnElement = sa.null()
        if cap is not None:
            probe = sa.select(sa.literal(1)).select_from(t).where(*conds).limit(cap)
            capped = sa.select(sa.func.count()).select_from(probe.subquery("probe")) \
                .scalar_subquery()
        if after is not None:
            conds = [*conds, t.c[self.layer.id_field] > after]
        page = (sa.select(t).where(*conds).order_by(*self.order()).limit(limit)
                .offset(offset).subquery("page"))
        feat = sa.select(
            self.feature(page).label("f"),
            page.c[self.layer.id_field].label("fid"),
            sa.func.row_number().over(order_by=self.order(page)).label("n"),
        ).subquery("feat")
        return sa.select(
            sa.func.coalesce(sa.cast(sa.func.json_agg(aggregate_order_by(feat.c.f, feat.c.n)),
                                     sa.Text), "[]"),
            sa.func.count(),
            sa.func.max(feat.c.fid),
            capped,
        )


@lru_cache
def versions_table(frozen: str) -> sa.Table | None:
    """The table of the layer's every version (``Layer.temporal``), once per declaration."""
    layer = Layer.from_config(json.loads(frozen))
    return layer.table(versions=True) if layer.temporal else None


def at_time(fq: FeatureQuery, value: str | None, frozen: str) -> FeatureQuery:
    """``fq`` for the features valid at ``value`` (an OGC API ``datetime``) when the layer
    keeps its versions; a layer without them ignores ``datetime``."""
    if value and fq.layer.temporal is not None:
        fq.interval = parse_datetime(value)
        fq.table = versions_table(frozen)
    return fq


# Placeholders of a page template; nothing a client sends can contain them, because they
# only ever replace markers in SQL we compiled, never text that came from a request.
_MARK = {"where": "__lis_where__", "limit": "__lis_limit__", "offset": "__lis_offset__",
         "after": "__lis_after__", "cap": "__lis_cap__"}
MAX_TEMPLATES = 512
_TEMPLATES: dict[tuple, str] = {}


def bound_params(compiled: Compiled) -> dict[str, object]:
    """The parameters of a compiled statement as the driver must receive them: through
    each type's bind processor, as SQLAlchemy does when it executes the statement."""
    params = compiled.construct_params()
    processors = compiled._bind_processors  # noqa: SLF001 - the executor's own map
    return {k: processors[k](v) if k in processors and v is not None else v
            for k, v in params.items()}
