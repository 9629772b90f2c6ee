"""A pygeoapi feature provider that has PostGIS build the GeoJSON.

pygeoapi's stock PostgreSQL provider reflects the table for every collection and builds
features in Python. This one gets its view and fields from the layer declaration in the
generated config (``layers.py``), compiles the request
(bbox, property filters, CQL2 (``cql.py``), sortby, properties, Part 2 ``crs``) into
one parameterised statement, and lets ``json_agg``/``ST_AsGeoJSON`` assemble the page.
A collection may carry a fixed filter (``district_code``) so one view serves every
per-district collection.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cache, lru_cache

import sqlalchemy as sa
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderConnectionError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
    ProviderQueryError,
)
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from landplatform.publish import cql
from landplatform.publish.engine import get_public_engine, read
from landplatform.publish.layers import Layer
from landplatform.publish.query import CRS84_URI, FeatureQuery, QueryError, at_time

LOGGER = logging.getLogger(__name__)


@lru_cache(maxsize=256)
def layer_from_config(frozen: str) -> tuple[Layer, sa.Table]:
    """Layer and table from the config's layer declaration (built once per declaration)."""
    layer = Layer.from_config(json.loads(frozen))
    return layer, layer.table()


@dataclass
class PendingFilter:
    """A filter as pygeoapi received it, parsed by ``cql.parse`` in the provider (where a
    bad one becomes a 400 with its reason) rather than by pygeoapi's pygeofilter."""

    value: str
    lang: str | None
    crs: str | None = None


def _pending_text(text: str) -> PendingFilter:
    # pygeoapi calls this for every GET filter, whatever filter-lang says: a JSON
    # object is told from cql2-text by its brace (cql.parse, lang None)
    return PendingFilter(text, None)


def _pending_json(text: str) -> PendingFilter:
    return PendingFilter(text, "cql2-json")


def _pending_crs(filter_: PendingFilter, filter_crs_uri: str | None = None,
                 **_: object) -> PendingFilter:
    filter_.crs = filter_crs_uri
    return filter_


@cache
def install_filter_parser() -> None:
    """Once per process: pygeoapi's items handler (HTML, JSON-LD, POST it serves) parses
    ``filter`` with pygeofilter, which refuses valid CQL2 (``BBOX(...)`` literals, ``NOT``
    before a bracket) and makes its own SQL of what it accepts. It looks its three
    functions up in its module at each request: they are replaced by ones that hand the
    filter's text to this provider, which parses and translates it as the JSON path does.
    Every feature provider of our configs is this one (``resources.py``)."""
    from pygeoapi.api import itemtypes

    itemtypes.parse_cql2_text = _pending_text
    itemtypes.parse_cql2_json = _pending_json
    itemtypes.modify_pygeofilter = _pending_crs


class PostGISProvider(BaseProvider):
    """Provider for the views declared in ``landplatform.publish.layers``."""

    def __init__(self, provider_def: dict) -> None:
        super().__init__(provider_def)
        data = provider_def["data"]
        declaration = {k: v for k, v in data.items() if k != "filter"}
        self.frozen = json.dumps(declaration, sort_keys=True)
        self.layer, self.table = layer_from_config(self.frozen)
        self.fixed: dict[str, str] = dict(data.get("filter") or {})
        self.id_field = self.layer.id_field
        self.geom_field = self.layer.geom_field
        self._fields = self.layer.field_schemas()
        self.offered_crs = tuple(provider_def.get("crs") or [CRS84_URI])

    def get_fields(self) -> dict:
        return self._fields

    def _query(self, *, bbox: list | None = None, properties: list | None = None,
               filterq=None, sortby: list | None = None,  # noqa: ANN001
               select_properties: list | None = None, skip_geometry: bool = False,
               crs_transform_spec=None) -> FeatureQuery:  # noqa: ANN001
        corners = None
        if bbox:
            # 6 values: (minx, miny, minz, maxx, maxy, maxz); heights do not apply here.
            corners = [float(v) for v in ((bbox[0], bbox[1], bbox[3], bbox[4])
                                          if len(bbox) == 6 else bbox)]
        return FeatureQuery(
            self.layer, self.table, fixed=self.fixed, bbox=corners,
            properties=list(properties or []), filter=self._filter(filterq),
            sortby=[(s["property"], s["order"] == "-") for s in sortby or []],
            select=list(select_properties or []) or None, skip_geometry=skip_geometry,
            crs_uri=crs_transform_spec.target_crs_uri if crs_transform_spec else None)

    def _filter(self, filterq: object) -> cql.Filter | None:
        if filterq is None:
            return None
        if not isinstance(filterq, PendingFilter):
            raise QueryError("filter not parsed by this server (install_filter_parser)")
        crs = filterq.crs if filterq.crs not in (None, CRS84_URI) else None
        if crs is not None and crs not in self.offered_crs:
            raise QueryError(f"filter-crs {crs} is not offered by this collection")
        try:
            return cql.parse(filterq.value, filterq.lang, crs)
        except cql.FilterError as exc:
            raise QueryError(str(exc)) from None

    def _run(self, stmt, row: bool = False):  # noqa: ANN001, ANN202
        try:
            def run(conn):  # noqa: ANN001, ANN202
                result = conn.execute(stmt)
                return result.one() if row else result.scalar_one_or_none()

            return read(get_public_engine(), run)
        except PoolTimeout as exc:
            raise ProviderConnectionError(user_msg="database busy, retry shortly") from exc
        except OperationalError as exc:
            LOGGER.error("database unavailable: %s", exc)
            raise ProviderConnectionError(user_msg="database unavailable") from exc
        except DataError as exc:  # a value PostgreSQL cannot take (range, encoding)
            raise ProviderInvalidQueryError(
                user_msg="a parameter value is out of range or malformed") from exc
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
        try:
            fq = at_time(self._query(bbox=bbox, properties=properties, filterq=filterq,
                                     sortby=sortby, select_properties=select_properties,
                                     skip_geometry=skip_geometry,
                                     crs_transform_spec=crs_transform_spec),
                         datetime_, self.frozen)
            count_stmt = fq.count_stmt()
            page_stmt = fq.page_stmt(limit, offset=offset)
        except QueryError as exc:
            raise ProviderInvalidQueryError(user_msg=str(exc)) from exc
        result = {"type": "FeatureCollection", "features": [],
                  "numberMatched": self._run(count_stmt), "numberReturned": 0}
        if resulttype == "hits":
            return result
        features, returned, _last, _ = self._run(page_stmt, row=True)
        result["features"] = json.loads(features)
        result["numberReturned"] = returned
        return result

    def get(self, identifier, crs_transform_spec=None, **kwargs) -> dict:  # noqa: ANN001
        try:
            key = int(identifier) if self.layer.id_type == "integer" else str(identifier)
        except ValueError:
            raise ProviderItemNotFoundError(user_msg="identifier not found") from None
        fq = self._query(crs_transform_spec=crs_transform_spec)
        fq.fixed = {**fq.fixed, self.layer.id_field: key}
        features, returned, _last, _ = self._run(fq.page_stmt(1), row=True)
        if not returned:
            raise ProviderItemNotFoundError(user_msg="identifier not found")
        return json.loads(features)[0]

    def __repr__(self) -> str:
        return f"<PostGISProvider> {self.layer.view} {self.fixed}"
