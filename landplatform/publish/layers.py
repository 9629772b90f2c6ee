"""The published layers: which view each reads and the fields it exposes.

Declared once (here for the platform's own layers, in each domain's ``publish`` module
for theirs) and carried to the provider through the generated pygeoapi config, so neither
pygeoapi nor the provider reflects a table per collection (about 700 districts x several
layers would otherwise cost a reflection each at start). Only ``publish.*`` views are
declared: restricted data has no way in.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from geoalchemy2 import Geometry

# JSON-schema type -> SQLAlchemy column type, for the filter compiler.
SQL_TYPES = {"string": sa.Text, "integer": sa.BigInteger, "number": sa.Numeric,
             "boolean": sa.Boolean, "date": sa.Date,
             "date-time": sa.DateTime(timezone=True)}


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # JSON schema type (string, integer, number, boolean) or date / date-time
    title: str = ""

    @property
    def schema(self) -> dict:
        if self.type in ("date", "date-time"):
            return {"type": "string", "format": self.type, "title": self.title or self.name}
        return {"type": self.type, "title": self.title or self.name}


@dataclass(frozen=True)
class Counts:
    """Where exact counts of a layer's whole collections come from: a small view the
    loader keeps, one row per value of ``key`` (the collection's fixed filter), so an
    unfiltered page never counts its rows."""

    view: str
    key: str
    column: str

    def __post_init__(self) -> None:
        if self.view.count(".") != 1:
            raise ValueError(f"Counts.view must be schema.view, not {self.view!r}")


@dataclass(frozen=True)
class Extents:
    """Where the extent of each unit of a layer's features is kept: a small view, one row
    per value of ``key`` with its CRS84 bounds, kept current by every writer in the
    writing transaction. A bbox request (items, a tile) then names the units it can meet
    (``key IN (...)``), so over tables partitioned on ``key`` PostgreSQL plans the
    partitions of those units only, instead of one scan per partition of the country."""

    view: str
    key: str
    bounds: tuple[str, str, str, str] = ("min_lon", "min_lat", "max_lon", "max_lat")

    def __post_init__(self) -> None:
        if self.view.count(".") != 1:
            raise ValueError(f"Extents.view must be schema.view, not {self.view!r}")

    def statement(self, bbox: tuple[float, float, float, float]) -> sa.TextClause:
        """The units whose extent meets ``bbox`` (CRS84 minx, miny, maxx, maxy)."""
        schema, view = self.view.split(".")
        x0, y0, x1, y1 = (f'"{c}"' for c in self.bounds)
        return sa.text(
            f'SELECT "{self.key}" FROM "{schema}"."{view}" WHERE {x0} <= :maxx AND '
            f"{x1} >= :minx AND {y0} <= :maxy AND {y1} >= :miny"
        ).bindparams(minx=bbox[0], miny=bbox[1], maxx=bbox[2], maxy=bbox[3])


@dataclass(frozen=True)
class Temporal:
    """Where every version of a layer's features lives, for OGC API ``datetime``: a view
    with the layer's fields and each version's validity ``[start, end)`` (end NULL: still
    valid), so a request for an instant reads the features as they were then."""

    view: str
    start: str
    end: str


@dataclass(frozen=True)
class Generalised:
    """What a layer's tiles show below its ``min_zoom``: a summary view the owning domain
    keeps current (shapes of the units with their counts, say), drawn from ``min_zoom``
    up to the next source's ``min_zoom`` or the layer's own. Its features go into the
    same tile layer under the collection's name, so a map styles one layer and sees
    something at every zoom; ``fields`` are the summary's, beside the layer's."""

    view: str
    min_zoom: int
    fields: tuple[Field, ...]
    id_field: str = "id"
    geom_field: str = "geom"

    def __post_init__(self) -> None:
        if self.view.count(".") != 1:
            raise ValueError(f"Generalised.view must be schema.view, not {self.view!r}")


@dataclass(frozen=True)
class Layer:
    """A published layer. Besides the view and its fields, what the platform must know
    about it is declared here, so the platform never recognises a layer by its name:
    ``min_zoom`` (below it the layer's tiles are empty), ``counts`` (see ``Counts``),
    ``writable`` (its per-unit collections take OGC API Features Part 4 writes, served by
    the domain that declares it), ``conformance`` (classes it brings to /conformance),
    ``temporal`` (see ``Temporal``), ``generalised`` (what its tiles show below
    ``min_zoom``, see ``Generalised``; coarsest first) and ``extents`` (see ``Extents``:
    for the current features, not for ``datetime`` requests)."""

    key: str  # collection id, or its prefix for per-district collections
    view: str  # schema-qualified view name
    title: str
    description: str
    keywords: tuple[str, ...]
    fields: tuple[Field, ...]
    id_field: str = "id"
    id_type: str = "integer"
    geom_field: str | None = "geom"
    title_field: str | None = None
    min_zoom: int = 0
    counts: Counts | None = None
    writable: bool = False
    conformance: tuple[str, ...] = ()
    temporal: Temporal | None = None
    generalised: tuple[Generalised, ...] = ()
    extents: Extents | None = None

    def __post_init__(self) -> None:
        zooms = [g.min_zoom for g in self.generalised]
        if zooms != sorted(set(zooms)) or any(z >= self.min_zoom for z in zooms):
            raise ValueError(f"{self.key}: generalised sources must start at distinct "
                             f"zooms below min_zoom {self.min_zoom}, coarsest first")

    def tile_source(self, z: int) -> Layer | Generalised | None:
        """What a WebMercatorQuad tile of zoom ``z`` is built from: the layer itself from
        ``min_zoom``, below it the finest generalised source that starts at or below
        ``z``, else nothing (an empty tile)."""
        if z >= self.min_zoom:
            return self
        return next((g for g in reversed(self.generalised) if g.min_zoom <= z), None)

    @property
    def first_zoom(self) -> int:
        """The coarsest zoom whose tiles hold anything."""
        return self.generalised[0].min_zoom if self.generalised else self.min_zoom

    def to_config(self) -> dict:
        """The layer as provider ``data`` in the pygeoapi config (plain, YAML-safe)."""
        return {"layer": self.key, "view": self.view, "id_field": self.id_field,
                "id_type": self.id_type, "geom_field": self.geom_field,
                "fields": [[f.name, f.type, f.title] for f in self.fields],
                "min_zoom": self.min_zoom,
                "counts": None if self.counts is None else [
                    self.counts.view, self.counts.key, self.counts.column],
                "writable": self.writable, "conformance": list(self.conformance),
                "temporal": None if self.temporal is None else [
                    self.temporal.view, self.temporal.start, self.temporal.end],
                "generalised": [{"view": g.view, "min_zoom": g.min_zoom,
                                 "id_field": g.id_field, "geom_field": g.geom_field,
                                 "fields": [[f.name, f.type, f.title] for f in g.fields]}
                                for g in self.generalised],
                "extents": None if self.extents is None else [
                    self.extents.view, self.extents.key, list(self.extents.bounds)]}

    @classmethod
    def from_config(cls, data: dict) -> Layer:
        counts, temporal, extents = (data.get("counts"), data.get("temporal"),
                                     data.get("extents"))
        return cls(key=data["layer"], view=data["view"], title=data["layer"],
                   description="", keywords=(), id_field=data["id_field"],
                   id_type=data["id_type"], geom_field=data["geom_field"],
                   fields=tuple(Field(*f) for f in data["fields"]),
                   min_zoom=int(data.get("min_zoom") or 0),
                   counts=Counts(*counts) if counts else None,
                   writable=bool(data.get("writable")),
                   conformance=tuple(data.get("conformance") or ()),
                   temporal=Temporal(*temporal) if temporal else None,
                   extents=(Extents(extents[0], extents[1], tuple(extents[2]))
                            if extents else None),
                   generalised=tuple(
                       Generalised(g["view"], int(g["min_zoom"]),
                                   tuple(Field(*f) for f in g["fields"]),
                                   g["id_field"], g["geom_field"])
                       for g in data.get("generalised") or ()))

    def field_types(self) -> dict[str, str]:
        return {f.name: f.type for f in self.fields}

    def field_schemas(self) -> dict[str, dict]:
        return {f.name: f.schema for f in self.fields}

    def table(self, versions: bool = False) -> sa.Table:
        """A SQLAlchemy table for the view (``versions``: the temporal view, with each
        version's validity), built from the declaration (no reflection)."""
        cols = [sa.Column(self.id_field, SQL_TYPES[self.id_type])]
        cols += [sa.Column(f.name, SQL_TYPES[f.type]) for f in self.fields
                 if f.name != self.id_field]
        view = self.view
        if versions and self.temporal is not None:
            view = self.temporal.view
            names = {c.name for c in cols}
            cols += [sa.Column(n, SQL_TYPES["date-time"])
                     for n in (self.temporal.start, self.temporal.end) if n not in names]
        if self.geom_field:
            cols.append(sa.Column(self.geom_field, Geometry(srid=4326)))
        schema, name = view.split(".")
        return sa.Table(name, sa.MetaData(), *cols, schema=schema)


ADMIN_UNITS = Layer(
    key="admin-units",
    view="publish.admin_units",
    title="Administrative units",
    description="Provinces, districts and communes before the 1 July 2025 reform and the "
                "provinces and communes after it (GSO codes), with validity dates. "
                "Geometry, where present, is a district's bounding box only.",
    keywords=("administrative units", "đơn vị hành chính"),
    fields=(
        Field("code", "string"), Field("level", "string"), Field("name", "string"),
        Field("parent_code", "string"), Field("valid_from", "date"),
        Field("valid_to", "date"), Field("geom_is_extent", "boolean"),
    ),
    title_field="name",
)

