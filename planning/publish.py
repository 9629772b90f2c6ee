"""What the planning domain publishes: zones (national and per district), plans, the overlay.

Collections are generated like the parcels': ``planning-zones`` (national, filter with
``?district_code=`` or ``?plan_code=``), ``planning-zones-<district_code>`` for every
district that has zones, and ``plans`` (the plan register, no geometry); plus the OGC API
process ``planning-overlay``. The publisher runs on the API's read-only engine, so it reads
``publish.plans`` only: one row per plan with its zone count and extent, kept by the
loader, so starting the API never scans zones.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

from landplatform.publish.layers import Field, Layer
from landplatform.publish.resources import (
    COMMON_CRS,
    VIETNAM_BBOX,
    collection,
    district_crs,
    units_crs,
)

ZONES_KEY = "planning-zones"
PLANS_KEY = "plans"
PROCESS_ID = "planning-overlay"
PROCESSOR = "planning.processes.OverlayProcessor"

PLANNING_ZONES = Layer(
    key=ZONES_KEY,
    view="publish.planning_zones",
    title="Planning zones",
    description="Zones (ô quy hoạch) of approved land-use and zoning plans: zone code, "
                "planned land-use code (Thông tư 08/2024), function, area, building "
                "coverage (mật độ xây dựng, %), maximum floors (tầng cao) and floor-area "
                "ratio (hệ số sử dụng đất), with the plan and its approving decision.",
    keywords=("planning", "zoning", "quy hoạch", "ô quy hoạch", "land use"),
    fields=(
        Field("plan_code", "string", "Plan code"),
        Field("plan_type", "string", "Plan type"),
        Field("plan_title", "string", "Plan title"),
        Field("decision_no", "string", "Approving decision no. (số quyết định)"),
        Field("decision_date", "date", "Decision date"),
        Field("district_code", "string", "District code (pre-2025 GSO)"),
        Field("zone_code", "string", "Zone code (ký hiệu ô)"),
        Field("planned_use", "string", "Planned land-use code"),
        Field("function", "string", "Function (chức năng)"),
        Field("area_m2", "number", "Stated area, m²"),
        Field("coverage_pct", "number", "Building coverage, % (mật độ xây dựng)"),
        Field("max_floors", "integer", "Maximum floors (tầng cao tối đa)"),
        Field("far", "number", "Floor-area ratio (hệ số sử dụng đất)"),
    ),
    title_field="zone_code",
)

PLANS = Layer(
    key=PLANS_KEY,
    view="publish.plans",
    title="Plans",
    description="Register of loaded land-use and zoning plans: type, administrative unit, "
                "period, scale, approving decision, number of zones and extent.",
    keywords=("planning", "quy hoạch", "kế hoạch sử dụng đất"),
    fields=(
        Field("plan_code", "string", "Plan code"),
        Field("plan_type", "string", "Plan type"),
        Field("admin_level", "string", "Administrative level of the plan's unit"),
        Field("admin_code", "string", "Administrative unit code"),
        Field("district_code", "string", "District code (pre-2025 GSO)"),
        Field("period_from", "integer", "Period from (year)"),
        Field("period_to", "integer", "Period to (year)"),
        Field("scale", "integer", "Scale denominator (1/N)"),
        Field("decision_no", "string", "Approving decision no."),
        Field("decision_date", "date", "Decision date"),
        Field("approved_by", "string", "Approved by"),
        Field("title", "string", "Title"),
        Field("zone_count", "integer", "Number of zones"),
        Field("min_lon", "number", "Extent: west"),
        Field("min_lat", "number", "Extent: south"),
        Field("max_lon", "number", "Extent: east"),
        Field("max_lat", "number", "Extent: north"),
    ),
    geom_field=None,
    title_field="plan_code",
)


def _zone_districts(engine: Engine) -> list[dict]:
    """Per district with zones: zone and plan counts and the extent (from plan rows)."""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text("""
            SELECT district_code, sum(zone_count) AS zone_count, count(*) AS plan_count,
                   min(min_lon) AS min_lon, min(min_lat) AS min_lat,
                   max(max_lon) AS max_lon, max(max_lat) AS max_lat
              FROM publish.plans
             WHERE district_code IS NOT NULL AND zone_count > 0
             GROUP BY district_code ORDER BY district_code
        """))]


def publisher(engine: Engine, districts: list[dict]) -> dict[str, dict]:
    """The planning resources for the generated pygeoapi config (a ``Publisher``)."""
    known = {d["district_code"]: d for d in districts}
    zoned = _zone_districts(engine)
    resources = {
        ZONES_KEY: collection(
            PLANNING_ZONES, title="Planning zones (national)",
            description=PLANNING_ZONES.description
            + " Filter with ?district_code=... or ?plan_code=...",
            bbox=VIETNAM_BBOX, crs=units_crs([known[z["district_code"]] for z in zoned
                                          if z["district_code"] in known])),
    }
    for z in zoned:
        code = z["district_code"]
        d = known.get(code)
        name = f"{d['district_name']}, {d['province_name']}" if d else f"district {code}"
        resources[f"{ZONES_KEY}-{code}"] = collection(
            PLANNING_ZONES,
            title=f"Planning zones, {name}",
            description=f"{PLANNING_ZONES.description} District {code}: {z['zone_count']} "
                        f"zones of {z['plan_count']} plan(s).",
            bbox=[z["min_lon"], z["min_lat"], z["max_lon"], z["max_lat"]],
            crs=district_crs(d) if d else COMMON_CRS,
            fixed={"district_code": code},
        )
    resources[PLANS_KEY] = collection(PLANS, title=PLANS.title, description=PLANS.description,
                                      bbox=VIETNAM_BBOX, crs=COMMON_CRS)
    resources[PROCESS_ID] = {"type": "process", "processor": {"name": PROCESSOR}}
    return resources
