"""Overlay a plan's zones on the cadastral parcels, in PostGIS, set-based.

What planners ask (domain.md): which parcels a plan affects, by how many m² and what share
of each parcel; which parcels' current use disagrees with the planned use; the area by
planned land-use code per district and per commune.

Definitions (the tests check them against an independent shapely computation):
- A row of the overlay is a (parcel, zone) pair whose intersection is at least
  ``MIN_OVERLAP_M2``; a parcel cut by three zones has three rows.
- Areas are measured in the official VN-2000 TM-3 CRS of the parcel's province
  (``publish.districts.tm3_epsg``): parcel and zone are ``ST_Transform``-ed from WGS84 and
  intersected there, where survey edges are straight; where a province's TM-3 is unknown,
  on the spheroid (``geography``). ``share`` is the overlap divided by the parcel's area
  measured the same way (not its stated DienTich).
- A parcel's **main zone** is the zone covering the largest share of it (ties: lowest
  zone code); the parcel **disagrees** when its primary current land-use code differs from
  its main zone's planned use. Both are decided over all pairs, before any ``min_share``.
- Without ``district`` the overlay takes every published parcel the zones touch (a plan's
  edge may cross into the next district); with it, zones and parcels of that district only.

Only ``publish.*`` views are read (``planning_zones``, ``parcels``, ``districts``), so the
functions run as the public role (the OGC API process does) and cannot see owners.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

# Intersections below this are digitising noise (areas are recorded to 0.1 m²).
MIN_OVERLAP_M2 = 0.1

COLUMNS = ("plan_code", "parcel_id", "parcel_ref", "district_code", "commune_code",
           "land_use", "primary_land_use", "zone_id", "zone_code", "planned_use", "function",
           "parcel_area_m2", "overlap_m2", "share", "main_zone", "disagrees")


class PlanNotFound(LookupError):
    """No published plan has this code."""


def _area(expr: str) -> str:
    """Area of ``expr`` (WGS84) in the row's TM-3 CRS, or on the spheroid without one."""
    return (f"CASE WHEN tm3_epsg IS NULL THEN ST_Area(({expr})::geography) "
            f"ELSE ST_Area(ST_Transform({expr}, tm3_epsg)) END")


def _metric(expr: str) -> str:
    """``expr`` in the row's TM-3 CRS (unchanged, WGS84, when the province has none)."""
    return f"CASE WHEN tm3_epsg IS NULL THEN {expr} ELSE ST_Transform({expr}, tm3_epsg) END"


def _measure(expr: str, epsg: str = "tm3_epsg") -> str:
    """Area of a geometry made by ``_metric``: planar in TM-3, else on the spheroid."""
    return f"CASE WHEN {epsg} IS NULL THEN ST_Area(({expr})::geography) ELSE ST_Area({expr}) END"


# Every (parcel, zone) pair of the plan with its overlap, share, main zone and agreement.
# Parcels and zones are projected once each (not once per pair), then cut in TM-3, where
# the survey's edges are straight lines (in lon/lat they are very slightly curved).
PAIRS = f"""
zones AS (
    SELECT z.id AS zone_id, z.plan_code, z.zone_code, z.planned_use, z.function, z.geom
      FROM publish.planning_zones z
     WHERE z.plan_code = :plan
       AND (CAST(:district AS text) IS NULL OR z.district_code = :district)
), touching AS (
    SELECT z.plan_code, p.id AS parcel_id, p.parcel_ref, p.district_code, p.commune_code,
           p.land_use, p.primary_land_use, z.zone_id, z.zone_code, z.planned_use,
           z.function, d.tm3_epsg, p.geom
      FROM zones z
      JOIN publish.parcels p ON ST_Intersects(p.geom, z.geom)
      LEFT JOIN publish.districts d ON d.district_code = p.district_code
     WHERE (CAST(:district AS text) IS NULL OR p.district_code = :district)
), parcel_m AS MATERIALIZED (
    SELECT DISTINCT ON (parcel_id) parcel_id, tm3_epsg, {_metric('geom')} AS g
      FROM touching
), zone_m AS MATERIALIZED (
    SELECT t.zone_id, t.tm3_epsg, {_metric('z.geom')} AS g
      FROM (SELECT DISTINCT zone_id, tm3_epsg FROM touching) t JOIN zones z USING (zone_id)
), measured AS (
    SELECT t.*, {_measure('ST_Intersection(pm.g, zm.g)', 't.tm3_epsg')} AS overlap,
           {_measure('pm.g', 't.tm3_epsg')} AS parcel_area
      FROM touching t
      JOIN parcel_m pm USING (parcel_id)
      JOIN zone_m zm ON zm.zone_id = t.zone_id
                    AND zm.tm3_epsg IS NOT DISTINCT FROM t.tm3_epsg
), kept AS (
    SELECT measured.*,
           row_number() OVER (PARTITION BY parcel_id
                              ORDER BY overlap DESC, zone_code) = 1 AS main_zone
      FROM measured
     WHERE overlap >= {MIN_OVERLAP_M2}
), overlay AS MATERIALIZED (
    SELECT plan_code, parcel_id, parcel_ref, district_code, commune_code, land_use,
           primary_land_use, zone_id, zone_code, planned_use, function,
           round(parcel_area::numeric, 2)::float8 AS parcel_area_m2,
           round(overlap::numeric, 2)::float8 AS overlap_m2,
           round((overlap / NULLIF(parcel_area, 0))::numeric, 6)::float8 AS share,
           main_zone,
           bool_or(main_zone AND primary_land_use IS DISTINCT FROM planned_use)
               OVER (PARTITION BY parcel_id) AS disagrees,
           geom
      FROM kept
)"""


@contextlib.contextmanager
def _connect(db: Engine | Connection) -> Iterator[Connection]:
    if isinstance(db, Connection):
        yield db
    else:
        with db.connect() as conn:
            yield conn


def _params(plan_code: str, district: str | None, min_share: float = 0.0) -> dict:
    return {"plan": plan_code, "district": district, "min_share": float(min_share)}


def check_plan(conn: Connection, plan_code: str) -> dict:
    """The published plan row, or PlanNotFound (a clear error beats an empty overlay)."""
    row = conn.execute(text("SELECT * FROM publish.plans WHERE plan_code = :plan"),
                       {"plan": plan_code}).mappings().first()
    if row is None:
        raise PlanNotFound(f"no published plan with code {plan_code!r}")
    return dict(row)


def affected_parcels(db: Engine | Connection, plan_code: str, district: str | None = None,
                     min_share: float = 0.0, geometry: str | None = None) -> list[dict]:
    """(a) Every affected (parcel, zone) pair with overlap_m2 and share, as dicts.

    ``geometry``: None (no geometry), 'wkb' (the parcel's, bytes) or 'geojson' (text).
    Rows with ``share < min_share`` are left out.
    """
    geom = {None: "", "wkb": ", ST_AsBinary(geom) AS geometry",
            "geojson": ", ST_AsGeoJSON(geom, 8) AS geometry"}[geometry]
    with _connect(db) as conn:
        check_plan(conn, plan_code)
        rows = conn.execute(text(f"""
            WITH {PAIRS}
            SELECT {', '.join(COLUMNS)}{geom} FROM overlay
             WHERE share >= :min_share
             ORDER BY parcel_id, overlap_m2 DESC, zone_code
        """), _params(plan_code, district, min_share)).mappings().all()
    out = [dict(r) for r in rows]
    if geometry == "wkb":
        for r in out:
            r["geometry"] = bytes(r["geometry"])
    return out


def disagreeing_parcels(db: Engine | Connection, plan_code: str,
                        district: str | None = None) -> list[dict]:
    """(b) Parcels whose primary current use differs from their main zone's planned use."""
    with _connect(db) as conn:
        check_plan(conn, plan_code)
        return [dict(r) for r in conn.execute(text(f"""
            WITH {PAIRS}
            SELECT parcel_id, parcel_ref, district_code, commune_code, land_use,
                   primary_land_use, zone_code, planned_use, overlap_m2, share
              FROM overlay WHERE main_zone AND disagrees
             ORDER BY parcel_id
        """), _params(plan_code, district)).mappings()]


def area_by_use(db: Engine | Connection, plan_code: str, district: str | None = None
                ) -> dict[str, list[dict]]:
    """(c) Area by planned land-use code: per district from the zones themselves, and per
    commune from the zones' overlap with that commune's parcels."""
    params = _params(plan_code, district)
    with _connect(db) as conn:
        check_plan(conn, plan_code)
        districts = conn.execute(text(f"""
            SELECT z.district_code, z.planned_use, count(*) AS zones,
                   round(sum({_area('z.geom')})::numeric, 2)::float8 AS area_m2,
                   sum(z.area_m2)::float8 AS stated_area_m2
              FROM publish.planning_zones z
              LEFT JOIN publish.districts d USING (district_code)
             WHERE z.plan_code = :plan
               AND (CAST(:district AS text) IS NULL OR z.district_code = :district)
             GROUP BY z.district_code, z.planned_use
             ORDER BY z.district_code, z.planned_use
        """), params).mappings().all()
        communes = conn.execute(text(f"""
            WITH {PAIRS}
            SELECT district_code, commune_code, planned_use,
                   count(DISTINCT parcel_id) AS parcels,
                   round(sum(overlap_m2)::numeric, 2)::float8 AS area_m2
              FROM overlay
             GROUP BY district_code, commune_code, planned_use
             ORDER BY district_code, commune_code, planned_use
        """), params).mappings().all()
    return {"districts": [dict(r) for r in districts], "communes": [dict(r) for r in communes]}


def overlay_geojson(db: Engine | Connection, plan_code: str, district: str | None = None,
                    min_share: float = 0.0) -> dict:
    """The affected pairs as a GeoJSON FeatureCollection (parcel geometry) plus a summary,
    both assembled by PostGIS in one statement: ``{"parcels": ..., "summary": ...}``."""
    props = ", ".join(f"'{c}', {c}" for c in COLUMNS)
    with _connect(db) as conn:
        plan = check_plan(conn, plan_code)
        doc = conn.execute(text(f"""
            WITH {PAIRS}, result AS MATERIALIZED (
                SELECT * FROM overlay WHERE share >= :min_share
            ), by_use AS (
                SELECT planned_use, count(*) AS pairs, count(DISTINCT parcel_id) AS parcels,
                       round(sum(overlap_m2)::numeric, 2)::float8 AS overlap_m2
                  FROM result GROUP BY planned_use
            )
            SELECT json_build_object(
                'parcels', json_build_object(
                    'type', 'FeatureCollection',
                    'features', coalesce((
                        SELECT json_agg(json_build_object(
                                   'type', 'Feature',
                                   'id', parcel_id || '-' || zone_id,
                                   'geometry', ST_AsGeoJSON(geom, 8)::json,
                                   'properties', json_build_object({props}))
                                 ORDER BY parcel_id, overlap_m2 DESC, zone_code)
                          FROM result), '[]'::json)),
                'summary', (
                    SELECT json_build_object(
                        'plan_code', CAST(:plan AS text),
                        'district_code', CAST(:district AS text),
                        'min_share', CAST(:min_share AS float8),
                        'pairs', count(*),
                        'parcels', count(DISTINCT parcel_id),
                        'parcels_disagreeing',
                            count(DISTINCT parcel_id) FILTER (WHERE disagrees),
                        'zones', count(DISTINCT zone_id),
                        'total_overlap_m2',
                            coalesce(round(sum(overlap_m2)::numeric, 2), 0)::float8,
                        'area_by_planned_use', coalesce((
                            SELECT json_agg(json_build_object(
                                       'planned_use', planned_use, 'pairs', pairs,
                                       'parcels', parcels, 'overlap_m2', overlap_m2)
                                     ORDER BY planned_use)
                              FROM by_use), '[]'::json))
                      FROM result))
        """), _params(plan_code, district, min_share)).scalar_one()
    doc["summary"]["plan"] = {k: plan[k] for k in ("plan_code", "plan_type", "title",
                                                   "decision_no", "district_code")}
    doc["summary"]["plan"]["decision_date"] = (plan["decision_date"].isoformat()
                                               if plan["decision_date"] else None)
    return doc
