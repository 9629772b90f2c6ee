"""What the cadastre publishes: ``parcels`` (national, filterable by ``district_code``,
``current_province_code`` and ``current_commune_code``), ``parcels-<district_code>`` for
every district that has parcels, ``parcels-p<province_code>`` for every province since the
2025 reform that has parcels, and the land-use code list; and the publishing units
themselves (the districts with parcels), which the other domains' collections are
generated for.

Read from two small summary views (``publish.districts``, kept by the loader, and
``publish.current_provinces``, kept with it by ``cadastre.current_units``), so starting or
listing never scans parcels.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

from cadastre.layers import LAND_USE_TYPES, PARCEL_CHANGES, PARCELS
from landplatform.publish.resources import (
    COMMON_CRS,
    VIETNAM_BBOX,
    collection,
    district_crs,
    units_crs,
)

PROVINCE_PREFIX = "p"  # parcels-p01: not a district code (three digits), never confused


def current_provinces(engine: Engine) -> list[dict]:
    """The provinces since the 2025 reform that have parcels, with counts and extents."""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(
            "SELECT * FROM publish.current_provinces ORDER BY province_code"))]


def published_districts(engine: Engine) -> list[dict]:
    """The publishing units: one row per district that has parcels (``Domain.units``)."""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(
            "SELECT * FROM publish.districts ORDER BY district_code"))]


def temporal(begin: object) -> dict:
    """A collection's temporal extent: from its earliest version, open-ended (the
    collection answers ``?datetime=`` for any instant since)."""
    return {"begin": begin, "end": None,
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}


def publisher(engine: Engine, districts: list[dict]) -> dict[str, dict]:
    """The cadastre's resources for the generated pygeoapi config (a ``Publisher``)."""
    starts = [d["first_valid_from"] for d in districts if d.get("first_valid_from")]
    resources = {
        PARCELS.key: collection(
            PARCELS, title="Cadastral parcels (national)",
            description=PARCELS.description + " Filter with ?district_code=..., "
                        "?current_province_code=... or ?current_commune_code=... (the units "
                        "since the 2025 reform); ?datetime= gives the cadastre as it was "
                        "then.",
            bbox=VIETNAM_BBOX, crs=units_crs(districts)),
    }
    if starts:
        resources[PARCELS.key]["extents"]["temporal"] = temporal(min(starts))
    for d in districts:
        resources[f"{PARCELS.key}-{d['district_code']}"] = collection(
            PARCELS,
            title=f"Cadastral parcels, {d['district_name']}, {d['province_name']}",
            description=f"{PARCELS.description} District {d['district_code']} "
                        f"({d['district_name']}), {d['parcel_count']} parcels.",
            bbox=[d["min_lon"], d["min_lat"], d["max_lon"], d["max_lat"]],
            crs=district_crs(d),
            fixed={"district_code": d["district_code"]},
        )
        if d.get("first_valid_from"):
            resources[f"{PARCELS.key}-{d['district_code']}"]["extents"]["temporal"] = \
                temporal(d["first_valid_from"])
    for p in current_provinces(engine):
        key = f"{PARCELS.key}-{PROVINCE_PREFIX}{p['province_code']}"
        resources[key] = collection(
            PARCELS,
            title=f"Cadastral parcels, {p['province_name']} (since 1 July 2025)",
            description=f"{PARCELS.description} The parcels whose province since the 2025 "
                        f"reform is {p['province_code']} ({p['province_name']}): "
                        f"{p['parcel_count']} parcels from {p['district_count']} pre-2025 "
                        "district(s); filter by commune with ?current_commune_code=...",
            bbox=[p["min_lon"], p["min_lat"], p["max_lon"], p["max_lat"]],
            crs=district_crs(p),
            fixed={"current_province_code": p["province_code"]},
        )
        if p.get("first_valid_from"):
            resources[key]["extents"]["temporal"] = temporal(p["first_valid_from"])
    resources[PARCEL_CHANGES.key] = collection(
        PARCEL_CHANGES, title=PARCEL_CHANGES.title,
        description=PARCEL_CHANGES.description + " Filter with ?district_code=..., "
                    "?kind=... or ?datetime=start/end.",
        bbox=VIETNAM_BBOX, crs=units_crs(districts))
    if starts:
        resources[PARCEL_CHANGES.key]["extents"]["temporal"] = temporal(min(starts))
    resources[LAND_USE_TYPES.key] = collection(
        LAND_USE_TYPES, title=LAND_USE_TYPES.title, description=LAND_USE_TYPES.description,
        bbox=VIETNAM_BBOX, crs=COMMON_CRS)
    return resources
