"""CQL2 filters: cql2-text and cql2-json parsed by cql2-rs into one JSON tree, translated
here into a SQLAlchemy condition.

Why this shape: the parser (the ``cql2`` package, the Rust reference implementation
tipg uses) accepts the whole grammar of both encodings and gives one canonical tree, so
every path (JSON items, HTML items, hits, GET and POST) answers the same expression the
same way. The translation is ours, an explicit allow-list: each operator and function of
the classes we declare maps to one SQL construct written here; anything else is a 400.
No name from a request reaches SQL except a property name that is one of the layer's
declared fields (a column of the table object, never text), and every value is a bound
parameter (geometries as WKB). PostgreSQL's three-valued logic is CQL2's: a comparison
with NULL is unknown, NOT of unknown is unknown, and only true selects.

The parser is native code with recursive descent: text nested deeply enough overflows
its stack and kills the process (measured: about 3,000 parentheses), so nesting is
bounded before the parser sees the text, and a JSON filter is read and measured by
Python's own parser first.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import lru_cache

import sqlalchemy as sa

from landplatform.publish.layers import Layer

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
MAX_DEPTH = 40  # nesting of the tree (and of brackets in text) a filter may have
MAX_NODES = 2000  # nodes of the tree: a few hundred coordinates of a polygon, or so
MAX_NOTS = 100  # NOT keywords of a text filter (a chain of them recurses in the parser)
MAX_IN = 1000  # values of one IN list


class FilterError(ValueError):
    """The filter is not one this server answers (a 400 with this message)."""


@dataclass(frozen=True)
class Filter:
    """A parsed CQL2 filter: its canonical JSON tree and the CRS of its geometries."""

    tree: object
    crs: str = CRS84_URI


# -- parsing -------------------------------------------------------------------------
def _check_text(text: str) -> None:
    """Refuse, before cql2-rs parses it, text nested deeper than it survives: brackets
    and NOT chains (outside string literals), and runs of signs (``- - - 1``)."""
    depth = deepest = nots = signs = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "'":  # a string literal, '' inside it is a quote
            i += 1
            while i < n and not (text[i] == "'" and text[i + 1:i + 2] != "'"):
                i += 2 if text[i] == "'" else 1
        elif c == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif c == ")":
            depth -= 1
        elif c in "+-":
            signs += 1
            if signs > 2:
                raise FilterError("the filter has more than two signs in a row")
        elif c in "nN" and text[i:i + 3].upper() == "NOT" and \
                (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")) and \
                not (text[i + 3:i + 4].isalnum() or text[i + 3:i + 4] == "_"):
            nots += 1
        if not c.isspace() and c not in "+-":
            signs = 0
        i += 1
    if deepest > MAX_DEPTH:
        raise FilterError(f"the filter is nested deeper than {MAX_DEPTH} levels")
    if nots > MAX_NOTS:
        raise FilterError(f"the filter has more than {MAX_NOTS} NOTs")


def _measure(tree: object, depth: int = 0, count: list[int] | None = None) -> None:
    """Bound the tree's depth and size (the translator recurses over it)."""
    count = count if count is not None else [0]
    count[0] += 1
    if depth > MAX_DEPTH * 2:  # a JSON level per operator plus one for its args list
        raise FilterError(f"the filter is nested deeper than {MAX_DEPTH} levels")
    if count[0] > MAX_NODES:
        raise FilterError(f"the filter has more than {MAX_NODES} parts")
    children = tree.values() if isinstance(tree, dict) else \
        tree if isinstance(tree, list) else ()
    for child in children:
        _measure(child, depth + 1, count)


def parse(value: str | dict | list | bool, lang: str | None = None,
          crs: str | None = None) -> Filter:
    """A filter from a request: cql2-text (a string), or cql2-json (a string of JSON, or
    the JSON already decoded). ``lang`` None: JSON if the text is a JSON object."""
    import cql2

    if lang not in (None, "cql2-text", "cql2-json"):
        raise FilterError(f"filter-lang must be cql2-text or cql2-json, not {lang!r}")
    if isinstance(value, str) and lang is None:
        lang = "cql2-json" if value.lstrip().startswith("{") else "cql2-text"
    try:
        if lang == "cql2-text" and isinstance(value, str):
            _check_text(value)
            tree = cql2.parse_text(value).to_json()
        else:
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except (ValueError, RecursionError) as exc:
                    raise FilterError(f"filter is not JSON: {exc}") from None
            _measure(value)
            tree = cql2.parse_json(json.dumps(value)).to_json()
    except (cql2.ParseError, cql2.ValidationError, ValueError) as exc:
        if isinstance(exc, FilterError):
            raise
        kind = "text" if lang == "cql2-text" else "JSON"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FilterError(f"filter is not valid CQL2 {kind}: {first}") from None
    _measure(tree)
    return Filter(tree, crs or CRS84_URI)


# -- translation ---------------------------------------------------------------------
# kinds of value: string, number, boolean, date, timestamp, geometry, interval, list
KINDS = {"string": "string", "integer": "number", "number": "number",
         "boolean": "boolean", "date": "date", "date-time": "timestamp"}
COMPARISONS = {"=": "__eq__", "<>": "__ne__", "<": "__lt__", "<=": "__le__",
               ">": "__gt__", ">=": "__ge__"}
SPATIAL = {"s_intersects": "ST_Intersects", "s_equals": "ST_Equals",
           "s_disjoint": "ST_Disjoint", "s_touches": "ST_Touches", "s_within": "ST_Within",
           "s_overlaps": "ST_Overlaps", "s_crosses": "ST_Crosses",
           "s_contains": "ST_Contains"}
ARITHMETIC = ("+", "-", "*", "/", "%", "div", "^")
TEMPORAL = ("t_after", "t_before", "t_contains", "t_disjoint", "t_during", "t_equals",
            "t_finishedby", "t_finishes", "t_intersects", "t_meets", "t_metby",
            "t_overlappedby", "t_overlaps", "t_startedby", "t_starts")
HINTS = {"date": " (write DATE('2026-01-31'))",
         "timestamp": " (write TIMESTAMP('2026-01-31T00:00:00Z'))"}
NAMES = {"number": "number", "string": "string", "boolean": "boolean", "date": "date",
         "timestamp": "timestamp", "geometry": "geometry", "interval": "interval",
         "list": "list"}


@dataclass
class Value:
    """One translated operand: its SQL, its kind, and what it came from (for messages:
    the property's name, or the literal)."""

    sql: object
    kind: str
    prop: str | None = None
    literal: object = None
    is_literal: bool = False


@lru_cache(maxsize=64)
def _crs(uri: str) -> tuple[int, bool]:
    """(srid, northing first) of a filter-crs."""
    from landplatform.publish.query import QueryError, target_crs

    try:
        srid, north_first, _ = target_crs(uri)
    except QueryError as exc:
        raise FilterError(f"filter-crs: {exc}") from None
    return srid, north_first


class Translator:
    """One filter over one layer's table."""

    def __init__(self, layer: Layer, table: sa.Table, crs: str = CRS84_URI) -> None:
        self.layer, self.table = layer, table
        self.types = {name: KINDS[kind] for name, kind in layer.field_types().items()}
        self.types.setdefault(layer.id_field, KINDS[layer.id_type])
        self.geometry_names = {layer.geom_field, "geometry"} if layer.geom_field else set()
        self.srid, self.north_first = _crs(crs) if crs != CRS84_URI else (4326, False)

    # -- entry ------------------------------------------------------------------------
    def condition(self, tree: object) -> sa.ColumnElement:
        unknown = sorted(self._unknown(tree))
        if unknown:
            raise FilterError(f"filter names unknown properties: {', '.join(unknown)}")
        return self.predicate(tree)

    def _unknown(self, tree: object) -> set[str]:
        if isinstance(tree, dict):
            if set(tree) == {"property"}:
                name = tree["property"]
                known = name in self.types or name in self.geometry_names
                return set() if known else {str(name)}
            return {n for v in tree.values() for n in self._unknown(v)}
        if isinstance(tree, list):
            return {n for v in tree for n in self._unknown(v)}
        return set()

    # -- predicates -------------------------------------------------------------------
    def predicate(self, node: object) -> sa.ColumnElement:
        if isinstance(node, bool):
            return sa.true() if node else sa.false()
        if isinstance(node, dict) and "op" in node:
            op, args = str(node["op"]).lower(), node.get("args") or []
            if not isinstance(args, list):
                raise FilterError(f"the arguments of {op} must be a list")
            if op in ("and", "or"):
                if len(args) < 2:
                    raise FilterError(f"{op.upper()} takes two or more conditions")
                parts = [self.predicate(a) for a in args]
                return sa.and_(*parts) if op == "and" else sa.or_(*parts)
            if op == "not":
                self._arity(op, args, 1)
                return sa.not_(self.predicate(args[0]))
            if op in COMPARISONS:
                return self.compare(op, args)
            if op == "like":
                return self.like(args)
            if op == "between":
                return self.between(args)
            if op == "in":
                return self.in_(args)
            if op == "isnull":
                self._arity("IS NULL", args, 1)
                return self.operand(args[0], any_kind=True).sql.is_(None)
            if op in SPATIAL:
                return self.spatial(op, args)
            if op in TEMPORAL:
                return self.temporal(op, args)
            if op in ARITHMETIC or op in ("casei", "accenti"):
                raise FilterError(f"{op.upper()} gives a value, not a condition")
            raise FilterError(f"function {node['op']!r} is not supported in filters")
        value = self.operand(node)
        if value.kind == "boolean":  # a boolean property stands for itself
            return value.sql
        raise FilterError(f"{self._describe(value)} is not a condition")

    def compare(self, op: str, args: list) -> sa.ColumnElement:
        self._arity(op, args, 2)
        a, b = self.operand(args[0]), self.operand(args[1])
        a, b = self._comparable(a, b, op)
        return getattr(a.sql, COMPARISONS[op])(b.sql)

    def like(self, args: list) -> sa.ColumnElement:
        self._arity("LIKE", args, 2)
        a, b = self.operand(args[0]), self.operand(args[1])
        for v in (a, b):
            if v.kind != "string":
                raise FilterError(f"LIKE compares text: {self._describe(v)} is not a string "
                                  "property" if v.prop else
                                  f"LIKE compares text, not {self._describe(v)}")
        # CQL2's wildcards are % and _, its escape a backslash: PostgreSQL's LIKE
        return a.sql.like(b.sql)

    def between(self, args: list) -> sa.ColumnElement:
        self._arity("BETWEEN", args, 3)
        a, lo, hi = (self.operand(x) for x in args)
        a, lo = self._comparable(a, lo, "BETWEEN")
        a, hi = self._comparable(a, hi, "BETWEEN")
        if a.kind not in ("number", "date", "timestamp"):
            raise FilterError(f"BETWEEN compares numbers: {self._describe(a)} is not one")
        return sa.and_(a.sql >= lo.sql, a.sql <= hi.sql)

    def in_(self, args: list) -> sa.ColumnElement:
        self._arity("IN", args, 2)
        if not isinstance(args[1], list):
            raise FilterError("IN takes a list of values: x IN ('a', 'b')")
        if not args[1] or len(args[1]) > MAX_IN:
            raise FilterError(f"IN takes 1 to {MAX_IN} values")
        a = self.operand(args[0])
        items = [self._comparable(a, self.operand(x), "IN")[1] for x in args[1]]
        # each value bound with its own type (an IN list's one bind type would be the
        # first value's: 565754.1 as an integer)
        return a.sql.in_([v.sql for v in items])

    # -- operands ---------------------------------------------------------------------
    def operand(self, node: object, any_kind: bool = False) -> Value:
        if isinstance(node, bool):
            return Value(sa.literal(node, sa.Boolean), "boolean", literal=node,
                         is_literal=True)
        if isinstance(node, int | float):
            if not math.isfinite(node):
                raise FilterError("numbers in filters must be finite")
            # cql2-rs gives every number as a float: whole ones are bound as bigint,
            # others as the decimal the client wrote (exact against numeric columns)
            if float(node).is_integer() and abs(node) < 2 ** 53:
                number: int | Decimal = int(node)
                sql = sa.literal(number, sa.BigInteger)
            else:
                number = Decimal(repr(float(node)))
                sql = sa.literal(number, sa.Numeric)
            return Value(sql, "number", literal=number, is_literal=True)
        if isinstance(node, str):
            return Value(sa.literal(node, sa.Text), "string", literal=node, is_literal=True)
        if isinstance(node, list):
            raise FilterError("a list of values is taken by IN only")
        if not isinstance(node, dict):
            raise FilterError(f"{node!r} is not a CQL2 value")
        if set(node) == {"property"}:
            return self.column(node["property"])
        if "date" in node and len(node) == 1:
            return self._instant(node["date"], "date")
        if "timestamp" in node and len(node) == 1:
            return self._instant(node["timestamp"], "timestamp")
        if "interval" in node and len(node) == 1:
            return self._interval(node["interval"])
        if "bbox" in node and len(node) == 1 or "type" in node and "op" not in node:
            return self.geometry(node)
        if "op" in node:
            op, args = str(node["op"]).lower(), node.get("args") or []
            if op in ("casei", "accenti"):
                self._arity(op.upper(), args, 1)
                v = self.operand(args[0])
                if v.kind != "string":
                    raise FilterError(f"{op.upper()} compares text: {self._describe(v)} is "
                                      "not a string")
                sql = sa.func.lower(v.sql) if op == "casei" else \
                    sa.func.public.lis_unaccent(v.sql)
                return Value(sql, "string", prop=v.prop)
            if op in ARITHMETIC:
                return self.arithmetic(op, args)
            if op in COMPARISONS or op in SPATIAL or op in TEMPORAL or op in (
                    "and", "or", "not", "like", "between", "in", "isnull"):
                return Value(self.predicate(node), "boolean")
            raise FilterError(f"function {node['op']!r} is not supported in filters")
        raise FilterError(f"{json.dumps(node)[:80]} is not a CQL2 value")

    def column(self, name: object) -> Value:
        if name in self.geometry_names:
            return Value(self.table.c[self.layer.geom_field], "geometry", prop=str(name))
        return Value(self.table.c[name], self.types[name], prop=str(name))

    def arithmetic(self, op: str, args: list) -> Value:
        self._arity(op, args, 2)
        a, b = self.operand(args[0]), self.operand(args[1])
        for v in (a, b):
            if v.kind != "number":
                raise FilterError(f"arithmetic ({op}) takes numbers: {self._describe(v)} is "
                                  "not one")
        x, y = a.sql, b.sql
        if op in ("/", "^"):  # real division and powers, as CQL2 means them
            x, y = sa.cast(x, sa.Float), sa.cast(y, sa.Float)
            sql = x / y if op == "/" else sa.func.power(x, y)
        elif op in ("%", "div"):
            x, y = sa.cast(x, sa.Numeric), sa.cast(y, sa.Numeric)
            sql = sa.func.mod(x, y) if op == "%" else sa.func.div(x, y)
        else:
            sql = {"+": x + y, "-": x - y, "*": x * y}[op]
        return Value(sql, "number")

    def _instant(self, text_: object, kind: str) -> Value:
        try:
            if kind == "date":
                value: date = date.fromisoformat(str(text_))
                return Value(sa.literal(value, sa.Date), "date", literal=value,
                             is_literal=True)
            moment = datetime.fromisoformat(str(text_).replace("Z", "+00:00"))
        except ValueError:
            raise FilterError(f"{text_!r} is not a {'date' if kind == 'date' else 'timestamp'}"
                              ) from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return Value(sa.literal(moment, sa.DateTime(timezone=True)), "timestamp",
                     literal=moment, is_literal=True)

    def _interval(self, ends: object) -> Value:
        """An interval: (start, end) Values; None is an open end ('..')."""
        if not isinstance(ends, list) or len(ends) != 2:
            raise FilterError("an INTERVAL has a start and an end")
        bounds: list[Value | None] = []
        for end in ends:
            if end == "..":
                bounds.append(None)
            elif isinstance(end, str):
                bounds.append(self._instant(end, "date" if len(end) == 10 else "timestamp"))
            else:
                v = self.operand(end)
                if v.kind not in ("date", "timestamp"):
                    raise FilterError(f"an INTERVAL is of instants: {self._describe(v)} is "
                                      "not a date or timestamp")
                bounds.append(v)
        return Value(tuple(bounds), "interval")

    def geometry(self, node: dict) -> Value:
        """A geometry literal, validated by shapely and bound as WKB in the filter-crs,
        transformed to the storage CRS (EPSG:4326) by PostGIS."""
        import shapely
        from shapely.geometry import box, shape

        try:
            if "bbox" in node:
                corners = node["bbox"]
                if not isinstance(corners, list) or len(corners) not in (4, 6) or not all(
                        isinstance(c, int | float) and math.isfinite(c) for c in corners):
                    raise FilterError("a BBOX has 4 (or 6) numbers")
                minx, miny, maxx, maxy = (corners[0], corners[1], corners[3], corners[4]) \
                    if len(corners) == 6 else corners
                if self.north_first:
                    minx, miny, maxx, maxy = miny, minx, maxy, maxx
                if minx > maxx or miny > maxy:
                    raise FilterError("a BBOX's lower corner must be below and left of its "
                                      "upper corner")
                literal = box(minx, miny, maxx, maxy)
            else:
                literal = shape(node)
                if self.north_first:
                    literal = shapely.transform(literal, lambda xy: xy[:, ::-1])
        except FilterError:
            raise
        except (ValueError, TypeError, AttributeError, KeyError, IndexError,
                shapely.errors.ShapelyError) as exc:
            raise FilterError(f"a geometry in the filter is not a geometry: {exc}") from None
        if literal.is_empty or not literal.is_valid:
            raise FilterError("a geometry in the filter is empty or invalid "
                              f"({shapely.is_valid_reason(literal)})")
        if not all(math.isfinite(c) for c in literal.bounds):
            raise FilterError("a geometry in the filter has coordinates that are not numbers")
        sql = sa.func.ST_GeomFromWKB(sa.literal(shapely.to_wkb(literal), sa.LargeBinary),
                                     self.srid)
        if self.srid != 4326:
            sql = sa.func.ST_Transform(sql, 4326)
        return Value(sql, "geometry", literal=literal)

    # -- spatial and temporal ---------------------------------------------------------
    def spatial(self, op: str, args: list) -> sa.ColumnElement:
        self._arity(op.upper(), args, 2)
        a, b = self.operand(args[0]), self.operand(args[1])
        for v in (a, b):
            if v.kind != "geometry":
                raise FilterError(f"{op.upper()} relates geometries: {self._describe(v)} is "
                                  "not one")
        return getattr(sa.func, SPATIAL[op])(a.sql, b.sql)

    def temporal(self, op: str, args: list) -> sa.ColumnElement:
        """Allen's relations between intervals, an instant being an interval of no
        length, per CQL2 (OGC 21-065r2, temporal functions); open ends are infinite."""
        self._arity(op.upper(), args, 2)
        a, b = (self._period(self.operand(x)) for x in args)
        kinds = {v.kind for v in (*a, *b) if v is not None}
        if kinds == {"date", "timestamp"}:  # a date is its day's first instant, UTC
            a, b = tuple(map(_as_timestamp, a)), tuple(map(_as_timestamp, b))
        (s1, e1), (s2, e2) = a, b
        lt, eq = _bound_lt, _bound_eq
        rel = {
            "t_after": [lt(e2, s1, "hi", "lo")],
            "t_before": [lt(e1, s2, "hi", "lo")],
            "t_contains": [lt(s1, s2, "lo", "lo"), lt(e2, e1, "hi", "hi")],
            "t_disjoint": None,
            "t_during": [lt(s2, s1, "lo", "lo"), lt(e1, e2, "hi", "hi")],
            "t_equals": [eq(s1, s2, "lo", "lo"), eq(e1, e2, "hi", "hi")],
            "t_finishedby": [lt(s1, s2, "lo", "lo"), eq(e1, e2, "hi", "hi")],
            "t_finishes": [lt(s2, s1, "lo", "lo"), eq(e1, e2, "hi", "hi")],
            "t_intersects": [sa.not_(lt(e1, s2, "hi", "lo")),
                             sa.not_(lt(e2, s1, "hi", "lo"))],
            "t_meets": [eq(e1, s2, "hi", "lo")],
            "t_metby": [eq(s1, e2, "lo", "hi")],
            "t_overlappedby": [lt(s2, s1, "lo", "lo"), lt(s1, e2, "lo", "hi"),
                               lt(e2, e1, "hi", "hi")],
            "t_overlaps": [lt(s1, s2, "lo", "lo"), lt(s2, e1, "lo", "hi"),
                           lt(e1, e2, "hi", "hi")],
            "t_startedby": [eq(s1, s2, "lo", "lo"), lt(e2, e1, "hi", "hi")],
            "t_starts": [eq(s1, s2, "lo", "lo"), lt(e1, e2, "hi", "hi")],
        }[op]
        if rel is None:  # disjoint: one ends before the other starts
            return sa.or_(lt(e1, s2, "hi", "lo"), lt(e2, s1, "hi", "lo"))
        return sa.and_(*rel)

    def _period(self, v: Value) -> tuple[Value | None, Value | None]:
        if v.kind == "interval":
            return v.sql
        if v.kind in ("date", "timestamp"):
            return v, v
        raise FilterError(f"temporal functions relate dates, timestamps and intervals: "
                          f"{self._describe(v)} is not one")

    # -- checks -----------------------------------------------------------------------
    def _comparable(self, a: Value, b: Value, op: str) -> tuple[Value, Value]:
        """Both sides of a comparison of kinds that compare, else a 400 that names the
        property and the literal; a date and a timestamp compare as timestamps."""
        for v in (a, b):
            if v.kind == "geometry":
                name = v.prop or "a geometry"
                raise FilterError(f"{name} is a geometry: it can be used in spatial "
                                  "predicates (S_INTERSECTS, ...) only")
            if v.kind in ("interval", "list"):
                raise FilterError(f"{op} does not compare {v.kind}s (temporal functions "
                                  "relate intervals)")
        if a.kind == b.kind:
            return a, b
        if {a.kind, b.kind} == {"date", "timestamp"}:
            return _as_timestamp(a), _as_timestamp(b)
        prop, other = (a, b) if a.prop else (b, a)
        if prop.prop and other.is_literal:
            kind = self.layer.field_types().get(prop.prop, prop.kind)
            raise FilterError(f"{prop.prop} is a {kind}: it cannot be compared with "
                              f"{other.literal!r}{HINTS.get(prop.kind, '')}")
        raise FilterError(f"{self._describe(a)} and {self._describe(b)} are of different "
                          f"types ({a.kind}, {b.kind}): they cannot be compared")

    @staticmethod
    def _describe(v: Value) -> str:
        if v.prop:
            return v.prop
        if v.is_literal:
            return repr(v.literal)
        return f"a {NAMES.get(v.kind, v.kind)}"

    @staticmethod
    def _arity(op: str, args: list, n: int) -> None:
        if len(args) != n:
            raise FilterError(f"{op.upper()} takes {n} argument{'s' if n > 1 else ''}")


def _as_timestamp(v: Value | None) -> Value | None:
    if v is None or v.kind != "date":
        return v
    if v.is_literal:
        moment = datetime.combine(v.literal, time(), tzinfo=UTC)
        return Value(sa.literal(moment, sa.DateTime(timezone=True)), "timestamp",
                     v.prop, moment, True)
    sql = sa.func.timezone("UTC", sa.cast(v.sql, sa.DateTime()))
    return Value(sql, "timestamp", v.prop)


def _bound_lt(x: Value | None, y: Value | None, xside: str, yside: str) -> sa.ColumnElement:
    """x < y where None is an open end: -infinity as a start ("lo"), +infinity as an end."""
    if x is None or y is None:
        x_inf = None if x is not None else (-1 if xside == "lo" else 1)
        y_inf = None if y is not None else (-1 if yside == "lo" else 1)
        if x_inf is not None and y_inf is not None:
            return sa.true() if x_inf < y_inf else sa.false()
        return sa.true() if (x_inf == -1 or y_inf == 1) else sa.false()
    return x.sql < y.sql


def _bound_eq(x: Value | None, y: Value | None, xside: str, yside: str) -> sa.ColumnElement:
    if x is None or y is None:
        same = x is None and y is None and xside == yside
        return sa.true() if same else sa.false()
    return x.sql == y.sql


def condition(flt: Filter, layer: Layer, table: sa.Table) -> sa.ColumnElement:
    """The SQL condition of ``flt`` over ``layer``'s ``table``."""
    return Translator(layer, table, flt.crs).condition(flt.tree)

