"""Stage validated zones with COPY and merge a plan in ONE transaction.

The plan row is upserted by its natural key (plan_code); zones are merged by
(plan_id, zone_code): new ones inserted, changed ones updated in place (their zone_id stays),
zones no longer delivered removed. Every write is conditional on a real difference, so
re-loading the same delivery changes no data. The load-run bookkeeping is the parcels'.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection

from etl.staging import advisory_lock, copy_rows
from planning.rules import PlanMeta

STAGE_DDL = """
CREATE TEMP TABLE stage_zone (
    feature_no int, district_code text, zone_code text, planned_use text,
    planned_use_source text, function text, area_m2 numeric(14,1),
    computed_area_m2 numeric(14,1), coverage_pct numeric(5,2), max_floors int,
    far numeric(6,2), geom geometry(MultiPolygon, 4326)
) ON COMMIT DROP
"""
COPY_COLUMNS = ("feature_no, district_code, zone_code, planned_use, planned_use_source, "
                "function, area_m2, computed_area_m2, coverage_pct, max_floors, far, geom")
ZONE_ATTRS = ("district_code", "planned_use", "planned_use_source", "function", "area_m2",
              "computed_area_m2", "coverage_pct", "max_floors", "far")
PLAN_ATTRS = ("plan_type", "admin_level", "admin_code", "district_code", "period_from",
              "period_to", "scale", "decision_no", "decision_date", "approved_by", "title",
              "source_srid")


def lock_plan(conn: Connection, plan_code: str) -> None:
    """Serialise concurrent loads of the same plan."""
    advisory_lock(conn, "plans", [plan_code])


def stage(conn: Connection, rows: pd.DataFrame,
          progress: Callable[[int, int], None] | None = None) -> None:
    conn.execute(text(STAGE_DDL))
    copy_rows(conn, "stage_zone", COPY_COLUMNS, rows, progress)
    conn.execute(text("CREATE INDEX ON stage_zone (zone_code)"))
    conn.execute(text("ANALYZE stage_zone"))


def drop_zones(conn: Connection, feature_nos: list[int]) -> None:
    """Leave staged zones out of the merge (rejected by a check on the stage)."""
    conn.execute(text("DELETE FROM stage_zone WHERE feature_no = ANY(:nos)"),
                 {"nos": feature_nos})


def upsert_plan(conn: Connection, meta: PlanMeta, source_srid: int | None,
                run_id: int) -> tuple[int, str]:
    """Insert or update the plan row; return (plan_id, 'created'|'updated'|'unchanged')."""
    values = {**meta.as_json(), "decision_date": meta.decision_date,
              "source_srid": source_srid, "run": run_id}
    cols = ", ".join(PLAN_ATTRS)
    written = conn.execute(text(f"""
        INSERT INTO planning.plan (plan_code, {cols}, load_run_id)
        VALUES (:plan_code, {', '.join(':' + c for c in PLAN_ATTRS)}, :run)
        ON CONFLICT (plan_code) DO UPDATE
           SET {', '.join(f'{c} = EXCLUDED.{c}' for c in PLAN_ATTRS)},
               load_run_id = EXCLUDED.load_run_id
         WHERE ({', '.join('plan.' + c for c in PLAN_ATTRS)})
               IS DISTINCT FROM ({', '.join('EXCLUDED.' + c for c in PLAN_ATTRS)})
        RETURNING plan_id, xmax = 0 AS inserted
    """), values).first()
    if written is not None:  # xmax = 0: the row was inserted, not updated
        return written.plan_id, "created" if written.inserted else "updated"
    plan_id = conn.execute(text("SELECT plan_id FROM planning.plan WHERE plan_code = :c"),
                           {"c": meta.plan_code}).scalar_one()
    return plan_id, "unchanged"


def merge_zones(conn: Connection, plan_id: int, keep_codes: list[str]) -> dict[str, int]:
    """Merge stage_zone into the plan's zones; remove zones whose code is not in
    ``keep_codes`` (every code of the delivery, rejected features' included)."""
    params = {"plan": plan_id}
    changed = " OR ".join(f"z.{c} IS DISTINCT FROM s.{c}" for c in ZONE_ATTRS)
    conn.execute(text(f"""
        CREATE TEMP TABLE zone_merge ON COMMIT DROP AS
        SELECT s.feature_no, z.zone_id, z.district_code AS old_district,
               CASE WHEN z.zone_id IS NULL THEN 'new'
                    WHEN {changed} OR ST_AsBinary(z.geom) <> ST_AsBinary(s.geom)
                    THEN 'changed' ELSE 'unchanged' END AS action
          FROM stage_zone s
          LEFT JOIN planning.zone z ON z.plan_id = :plan AND z.zone_code = s.zone_code
    """), params)
    removed = conn.execute(text("""
        DELETE FROM planning.zone
         WHERE plan_id = :plan AND NOT (zone_code = ANY(CAST(:codes AS text[])))
    """), {**params, "codes": keep_codes}).rowcount
    conn.execute(text(f"""
        UPDATE planning.zone z
           SET {', '.join(f'{c} = s.{c}' for c in ZONE_ATTRS)}, geom = s.geom
          FROM zone_merge m JOIN stage_zone s USING (feature_no)
         WHERE m.action = 'changed' AND z.district_code = m.old_district
           AND z.zone_id = m.zone_id
    """))
    conn.execute(text(f"""
        INSERT INTO planning.zone (plan_id, zone_code, {', '.join(ZONE_ATTRS)}, geom)
        SELECT :plan, s.zone_code, {', '.join('s.' + c for c in ZONE_ATTRS)}, s.geom
          FROM stage_zone s JOIN zone_merge m USING (feature_no)
         WHERE m.action = 'new'
         ORDER BY s.zone_code
    """), params)
    counts = dict(conn.execute(text(
        "SELECT action, count(*) FROM zone_merge GROUP BY action")).all())
    return {"inserted": counts.get("new", 0), "updated": counts.get("changed", 0),
            "unchanged": counts.get("unchanged", 0), "removed": removed}


def finish_plan(conn: Connection, plan_id: int, run_id: int, zones_changed: bool) -> None:
    """Mark the plan as changed by this run when its zones were, and refresh its zone
    count and extent (the publisher reads them instead of scanning zones)."""
    if zones_changed:
        conn.execute(text("UPDATE planning.plan SET load_run_id = :run WHERE plan_id = :plan"),
                     {"run": run_id, "plan": plan_id})
    conn.execute(text("""
        UPDATE planning.plan p
           SET zone_count = s.n, min_lon = s.xmin, min_lat = s.ymin, max_lon = s.xmax,
               max_lat = s.ymax
          FROM (SELECT count(*) AS n, ST_XMin(ST_Extent(geom)) AS xmin,
                       ST_YMin(ST_Extent(geom)) AS ymin, ST_XMax(ST_Extent(geom)) AS xmax,
                       ST_YMax(ST_Extent(geom)) AS ymax
                  FROM planning.zone WHERE plan_id = :plan) s
         WHERE p.plan_id = :plan
           AND (p.zone_count, p.min_lon, p.min_lat, p.max_lon, p.max_lat)
               IS DISTINCT FROM (s.n, s.xmin, s.ymin, s.xmax, s.ymax)
    """), {"plan": plan_id})
