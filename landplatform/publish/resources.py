"""Generate the pygeoapi configuration from the database.

Collections are not hand-written: each domain's publisher adds its own (national and per
publishing unit, e.g. ``parcels`` and ``parcels-<district_code>``), generated from the
list of publishing units (districts) one domain supplies from a small summary view; the
platform adds the administrative units. Adding a district is loading its file and
restarting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy.engine import Engine

from landplatform import __version__
from landplatform.publish.layers import ADMIN_UNITS, Layer
from landplatform.settings import Settings

PROVIDER = "landplatform.publish.provider.PostGISProvider"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"
VIETNAM_BBOX = [102.1, 6.0, 117.9, 23.5]
# Templates that replace pygeoapi's where its own are wrong or load assets from the internet;
# pygeoapi falls back to its own for every other page.
TEMPLATES = Path(__file__).resolve().parent / "templates"
TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
# Output CRSs every feature collection offers (OGC API Features Part 2).
COMMON_CRS = [CRS84, EPSG.format(4326), EPSG.format(3857), EPSG.format(4756)]


def collection(layer: Layer, *, title: str, description: str, bbox: list[float],
               crs: list[str], fixed: dict | None = None) -> dict:
    """A feature collection served by the PostGIS provider (``fixed``: its filter)."""
    return {
        "type": "collection",
        "title": title,
        "description": description,
        "keywords": list(layer.keywords),
        "links": [],
        "extents": {"spatial": {"bbox": bbox, "crs": CRS84}},
        "providers": [{
            "type": "feature",
            "name": PROVIDER,
            "data": {**layer.to_config(), "filter": fixed or {}},
            "id_field": layer.id_field,
            "title_field": layer.title_field,
            "storage_crs": CRS84,
            "crs": crs,
        }],
    }


# A domain publisher adds its collections/processes: f(engine, districts) -> resources.
Publisher = Callable[[Engine, list[dict]], dict[str, dict]]
# The publishing units (one dict per district: district_code, district_name,
# province_name, tm3_epsg, extent, ...), supplied by the domain that keeps them.
Units = Callable[[Engine], list[dict]]


def district_crs(district: dict) -> list[str]:
    return COMMON_CRS + ([EPSG.format(district["tm3_epsg"])] if district["tm3_epsg"] else [])


def units_crs(units: Sequence[dict]) -> list[str]:
    """The output CRSs of a national collection: the common ones and every unit's TM-3."""
    return COMMON_CRS + [EPSG.format(e) for e in sorted(
        {d["tm3_epsg"] for d in units if d["tm3_epsg"]})]


def build_resources(engine: Engine, publishers: Sequence[Publisher] = (),
                    units: Units | None = None) -> dict[str, dict]:
    districts = units(engine) if units else []
    resources = {}
    for publisher in publishers:
        resources.update(publisher(engine, districts))
    resources[ADMIN_UNITS.key] = collection(ADMIN_UNITS, title=ADMIN_UNITS.title,
                                            description=ADMIN_UNITS.description,
                                            bbox=VIETNAM_BBOX, crs=COMMON_CRS)
    return resources


def link_tilesets(resources: dict[str, dict], base_url: str) -> None:
    """Link each collection with a geometry to its vector tilesets (``tiles.py`` serves
    them): OGC API Tiles clients (QGIS, GDAL's OGCAPI driver, MapLibre plugins) find
    tiles from the collection document, not from a path they guess."""
    for rid, res in resources.items():
        if any(p.get("type") == "feature" and p.get("name") == PROVIDER
               and p["data"].get("geom_field") for p in res.get("providers") or []):
            res.setdefault("links", []).append({
                "type": "application/json", "rel": TILESETS_VECTOR,
                "title": "Vector tiles (Mapbox Vector Tiles)",
                "href": f"{base_url}/collections/{rid}/tiles"})


def build_config(engine: Engine, settings: Settings, publishers: Sequence[Publisher] = (),
                 units: Units | None = None,
                 pages: Sequence[tuple[str, str]] = ()) -> dict:
    """The whole pygeoapi configuration (a dict; written to var/ only for pygeoapi).

    ``pages``: (title, path) of the composition root's own pages, linked from the landing
    page (``server.pages``, read by our landing page template)."""
    resources = build_resources(engine, publishers, units)
    link_tilesets(resources, settings.base_url)
    return {
        "server": {
            "bind": {"host": settings.host, "port": settings.port},
            "url": settings.base_url,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "gzip": False,
            "languages": ["en-US", "vi-VN"],
            "cors": False,  # the app's own middleware answers (landplatform.cors)
            "pretty_print": False,
            "templates": {"path": str(TEMPLATES)},
            "pages": [{"title": title, "href": f"{settings.base_url}{path}"}
                      for title, path in pages],
            "limits": {"default_items": settings.page_limit_default,
                       "max_items": settings.page_limit_max, "on_exceed": "throttle"},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                    "attribution": "&copy; OpenStreetMap contributors"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "Land information platform",
                "description": "Cadastral parcels, administrative units and land-use codes "
                               "of Vietnam, per district and national, through OGC APIs.",
                "keywords": ["cadastre", "land", "Vietnam", "OGC API"],
                "keywords_type": "theme",
                "terms_of_service": "https://creativecommons.org/licenses/by/4.0/",
                "url": settings.base_url,
            },
            "license": {"name": "CC-BY 4.0",
                        "url": "https://creativecommons.org/licenses/by/4.0/"},
            "provider": {"name": "Land information platform", "url": settings.base_url},
            "contact": {"name": "Land registration office", "position": "Data steward",
                        "email": "lis@example.org", "role": "pointOfContact",
                        "instructions": f"landplatform {__version__}"},
        },
        "resources": resources,
    }
