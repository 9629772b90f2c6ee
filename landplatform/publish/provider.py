"""A pygeoapi feature provider that has PostGIS build the GeoJSON.

pygeoapi's stock PostgreSQL provider reflects the table for every collection and builds
features in Python. This one gets its view and fields from the layer declaration in the
generated config (``layers.py``), compiles the request
(bbox, property filters, CQL2 via pygeofilter, sortby, properties, Part 2 ``crs``) into
one parameterised statement, and lets ``json_agg``/``ST_AsGeoJSON`` assemble the page.
A collection may carry a fixed filter (``district_code``) so one view serves every
per-district collection.
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache

import sqlalchemy as sa
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderConnectionError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
    ProviderQueryError,
)
from pygeofilter.backends.sqlalchemy import to_filter
from pyproj import CRS
from sqlalchemy.dialects.postgresql import JSON
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from landplatform.publish.engine import get_public_engine
from landplatform.publish.layers import Layer

LOGGER = logging.getLogger(__name__)
EPSG_URI = re.compile(r"/EPSG/\d+/(\d+)$")


@lru_cache(maxsize=256)
def _layer(frozen: str) -> tuple[Layer, sa.Table]:
    """Layer and table from the config's layer declaration (built once per declaration)."""
    layer = Layer.from_config(json.loads(frozen))
    return layer, layer.table()


@lru_cache
def _target_crs(uri: str) -> tuple[int, bool, int]:
    """(srid, northing-first axis order, decimals) for an OGC CRS URI."""
    if uri.endswith("/OGC/1.3/CRS84"):
        return 4326, False, 8
    match = EPSG_URI.search(uri)
    if not match:
        raise ProviderInvalidQueryError(user_msg=f"unsupported CRS {uri}")
    crs = CRS.from_epsg(int(match.group(1)))
    north_first = crs.axis_info[0].direction in ("north", "south")
    return int(match.group(1)), north_first, 8 if crs.is_geographic else 3


class PostGISProvider(BaseProvider):
    """Provider for the views declared in ``landplatform.publish.layers``."""

    def __init__(self, provider_def: dict) -> None:
        super().__init__(provider_def)
        data = provider_def["data"]
        declaration = {k: v for k, v in data.items() if k != "filter"}
        self.layer, self.table = _layer(json.dumps(declaration, sort_keys=True))
        self.fixed: dict[str, str] = dict(data.get("filter") or {})
        self.id_field = self.layer.id_field
        self.geom_field = self.layer.geom_field
        self._fields = self.layer.field_schemas()

    def get_fields(self) -> dict:
        return self._fields

    # -- building blocks ----------------------------------------------------------------
    def _conditions(self, bbox: list | None = None, properties: list | None = None,
                    filterq=None) -> list:  # noqa: ANN001 - pygeofilter AST
        t = self.table
        conds = [t.c[k] == v for k, v in self.fixed.items()]
        for name, value in properties or []:
            conds.append(t.c[name] == self._typed(name, value))
        if bbox and self.geom_field:
            # 6 values: (minx, miny, minz, maxx, maxy, maxz); heights do not apply here.
            corners = (bbox[0], bbox[1], bbox[3], bbox[4]) if len(bbox) == 6 else bbox
            minx, miny, maxx, maxy = (float(v) for v in corners)
            envelope = sa.func.ST_MakeEnvelope(minx, miny, maxx, maxy, 4326)
            conds.append(sa.func.ST_Intersects(t.c[self.geom_field], envelope))
        if filterq is not None:
            mapping = {c.name: c for c in t.columns}
            try:
                conds.append(to_filter(filterq, mapping))
            except Exception as exc:
                raise ProviderInvalidQueryError(user_msg=f"filter not supported: {exc}") \
                    from exc
        return conds

    def _typed(self, name: str, value: str):  # noqa: ANN202
        kind = self._fields.get(name, {}).get("type")
        try:
            if kind == "integer":
                return int(value)
            if kind == "number":
                return float(value)
        except ValueError:
            raise ProviderInvalidQueryError(
                user_msg=f"{name} must be a {kind}, got {value!r}") from None
        if kind == "boolean":
            return str(value).lower() in ("true", "1", "yes")
        return value

    def _feature(self, src, select_properties: list | None, skip_geometry: bool,
                 crs_transform_spec) -> sa.ColumnElement:  # noqa: ANN001
        names = [f for f in self._fields if not select_properties or f in select_properties]
        props = sa.func.json_build_object(*[x for n in names for x in (sa.literal(n), src.c[n])])
        geometry: sa.ColumnElement = sa.null()
        if self.geom_field and not skip_geometry:
            geom = src.c[self.geom_field]
            decimals = 8
            if crs_transform_spec is not None:
                srid, north_first, decimals = _target_crs(crs_transform_spec.target_crs_uri)
                if srid != 4326 or north_first:
                    geom = sa.func.ST_Transform(geom, srid)
                if north_first:
                    geom = sa.func.ST_FlipCoordinates(geom)
            geometry = sa.cast(sa.func.ST_AsGeoJSON(geom, decimals), JSON)
        return sa.func.json_build_object(
            sa.literal("type"), sa.literal("Feature"), sa.literal("id"), src.c[self.id_field],
            sa.literal("geometry"), geometry, sa.literal("properties"), props)

    def _order(self, sortby: list | None) -> list:
        t = self.table
        order = [t.c[s["property"]].desc() if s["order"] == "-" else t.c[s["property"]].asc()
                 for s in sortby or []]
        return order + [t.c[self.id_field]]

    def _run(self, stmt):  # noqa: ANN001, ANN202
        try:
            with get_public_engine().connect() as conn:
                return conn.execute(stmt).scalar_one_or_none()
        except PoolTimeout as exc:
            raise ProviderConnectionError(user_msg="database busy, retry shortly") from exc
        except OperationalError as exc:
            LOGGER.error("database unavailable: %s", exc)
            raise ProviderConnectionError(user_msg="database unavailable") from exc
        except DBAPIError as exc:
            LOGGER.error("query failed: %s", exc)
            raise ProviderQueryError(user_msg="query failed") from exc

    # -- pygeoapi interface -------------------------------------------------------------
    def query(self, offset: int = 0, limit: int = 10, resulttype: str = "results",
              bbox: list | None = None, datetime_: str | None = None,
              properties: list | None = None, sortby: list | None = None,
              select_properties: list | None = None, skip_geometry: bool = False,
              q: str | None = None, filterq=None, crs_transform_spec=None,  # noqa: ANN001
              **kwargs) -> dict:
        t = self.table
        conds = self._conditions(bbox, properties, filterq)
        matched = self._run(sa.select(sa.func.count()).select_from(t).where(*conds))
        result = {"type": "FeatureCollection", "features": [], "numberMatched": matched,
                  "numberReturned": 0}
        if resulttype == "hits":
            return result
        page = (sa.select(t).where(*conds).order_by(*self._order(sortby))
                .limit(limit).offset(offset).subquery("page"))
        feature = self._feature(page, select_properties, skip_geometry, crs_transform_spec)
        features = self._run(sa.select(sa.func.json_agg(feature)).select_from(page)) or []
        result["features"] = features
        result["numberReturned"] = len(features)
        return result

    def get(self, identifier, crs_transform_spec=None, **kwargs) -> dict:  # noqa: ANN001
        t = self.table
        try:
            key = int(identifier) if self.layer.id_type == "integer" else str(identifier)
        except ValueError:
            raise ProviderItemNotFoundError(user_msg="identifier not found") from None
        conds = self._conditions() + [t.c[self.id_field] == key]
        row = sa.select(t).where(*conds).subquery("one")
        feature = self._run(sa.select(self._feature(row, None, False, crs_transform_spec)))
        if feature is None:
            raise ProviderItemNotFoundError(user_msg="identifier not found")
        return feature

    def __repr__(self) -> str:
        return f"<PostGISProvider> {self.layer.view} {self.fixed}"
