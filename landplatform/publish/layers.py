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
class Layer:
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

    def to_config(self) -> dict:
        """The layer as provider ``data`` in the pygeoapi config (plain, YAML-safe)."""
        return {"layer": self.key, "view": self.view, "id_field": self.id_field,
                "id_type": self.id_type, "geom_field": self.geom_field,
                "fields": [[f.name, f.type, f.title] for f in self.fields]}

    @classmethod
    def from_config(cls, data: dict) -> Layer:
        return cls(key=data["layer"], view=data["view"], title=data["layer"],
                   description="", keywords=(), id_field=data["id_field"],
                   id_type=data["id_type"], geom_field=data["geom_field"],
                   fields=tuple(Field(*f) for f in data["fields"]))

    def field_types(self) -> dict[str, str]:
        return {f.name: f.type for f in self.fields}

    def field_schemas(self) -> dict[str, dict]:
        return {f.name: f.schema for f in self.fields}

    def table(self) -> sa.Table:
        """A SQLAlchemy table for the view, built from the declaration (no reflection)."""
        cols = [sa.Column(self.id_field, SQL_TYPES[self.id_type])]
        cols += [sa.Column(f.name, SQL_TYPES[f.type]) for f in self.fields
                 if f.name != self.id_field]
        if self.geom_field:
            cols.append(sa.Column(self.geom_field, Geometry(srid=4326)))
        schema, name = self.view.split(".")
        return sa.Table(name, sa.MetaData(), *cols, schema=schema)


PARCELS = Layer(
    key="parcels",
    view="publish.parcels",
    title="Cadastral parcels",
    description="Current cadastral parcels (thửa đất): commune, map sheet and parcel "
                "number, stated area, land-use codes (Thông tư 08/2024). Owners and "
                "certificates are not published.",
    keywords=("cadastre", "parcels", "thửa đất", "địa chính"),
    fields=(
        Field("province_code", "string", "Province code (pre-2025 GSO)"),
        Field("district_code", "string", "District code (pre-2025 GSO)"),
        Field("commune_code", "string", "Commune code (MaXa)"),
        Field("sheet_no", "integer", "Map sheet number (SoHieuToBanDo)"),
        Field("parcel_no", "integer", "Parcel number (SoThuTuThua)"),
        Field("parcel_ref", "string", "commune.sheet.parcel"),
        Field("area_m2", "number", "Stated area, m² (DienTich)"),
        Field("legal_area_m2", "number", "Legal area, m²"),
        Field("land_use", "string", "Land-use codes, '+'-joined"),
        Field("primary_land_use", "string", "Primary land-use code"),
        Field("address", "string", "Address"),
        Field("status", "string", "Status"),
        Field("current_province_code", "string", "Province since 1 July 2025"),
        Field("current_commune_code", "string", "Commune since 1 July 2025 (if whole)"),
        Field("valid_from", "date-time", "Version valid from"),
    ),
    title_field="parcel_ref",
)

LAND_USE_TYPES = Layer(
    key="land-use-types",
    view="publish.land_use_types",
    title="Land-use codes",
    description="Land-use code list of Thông tư 08/2024/TT-BTNMT, with the superseded "
                "Thông tư 27/2018 codes and what replaced them.",
    keywords=("land use", "loại đất", "code list"),
    fields=(
        Field("code", "string"), Field("catalog", "string"), Field("name_vi", "string"),
        Field("name_en", "string"), Field("group_code", "string"),
        Field("parent_code", "string"), Field("color", "string"),
        Field("replaced_by", "string"),
    ),
    id_type="string",
    title_field="code",
)

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

LAYERS = {layer.key: layer for layer in (PARCELS, LAND_USE_TYPES, ADMIN_UNITS)}
