"""What the cadastre publishes: ``parcels`` (national, filterable by ``district_code``),
``parcels-<district_code>`` for every district that has parcels, and the land-use code
list; and the publishing units themselves (the districts with parcels), which the other
domains' collections are generated for.

Read from one small summary view (``publish.districts``, kept by the loader), so starting
or listing never scans parcels.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

from cadastre.layers import LAND_USE_TYPES, PARCELS
from landplatform.publish.resources import (
    COMMON_CRS,
    VIETNAM_BBOX,
    collection,
    district_crs,
    units_crs,
)


def published_districts(engine: Engine) -> list[dict]:
    """The publishing units: one row per district that has parcels (``Domain.units``)."""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(
            "SELECT * FROM publish.districts ORDER BY district_code"))]


def publisher(engine: Engine, districts: list[dict]) -> dict[str, dict]:
    """The cadastre's resources for the generated pygeoapi config (a ``Publisher``)."""
    resources = {
        PARCELS.key: collection(
            PARCELS, title="Cadastral parcels (national)",
            description=PARCELS.description + " Filter with ?district_code=...",
            bbox=VIETNAM_BBOX, crs=units_crs(districts)),
    }
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
    resources[LAND_USE_TYPES.key] = collection(
        LAND_USE_TYPES, title=LAND_USE_TYPES.title, description=LAND_USE_TYPES.description,
        bbox=VIETNAM_BBOX, crs=COMMON_CRS)
    return resources
