"""Stage validated boundaries with COPY and merge them into ``admin.admin_unit`` in ONE
transaction, keeping every version in ``admin.unit_boundary``.

A unit whose delivered boundary is the one it has is unchanged (nothing written); a new
or different one closes the current version (``valid_to``, ``superseded_by_run``), adds
the next, and becomes the unit's ``geom`` with ``geom_is_extent = false``. Then the
parents: a district (pre-2025) or province whose boundary was never delivered gets the
union of its children's once every child has one (``derived``), re-derived when a child
changes; a delivered parent boundary is never overwritten by a derived one.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection

from boundaries.rules import PERIODS
from etl.report import Issue
from etl.staging import advisory_lock, copy_rows

STAGE_DDL = """
CREATE TEMP TABLE stage_boundary (
    feature_no int, unit_id int, level text, code text, geom geometry(MultiPolygon, 4326)
) ON COMMIT DROP
"""
COPY_COLUMNS = "feature_no, unit_id, level, code, geom"
VALID_ON = ("coalesce({u}.valid_from, '-infinity'::date) <= :on "
            "AND coalesce({u}.valid_to, 'infinity'::date) >= :on")
# Which parents are unions of which children, per period: (child level, parent level).
DERIVED = {"pre2025": (("commune", "district"), ("district", "province")),
           "2025": (("commune", "province"),)}


def lock(conn: Connection) -> None:
    """Serialise boundary loads: a load re-derives parents other loads' units share."""
    advisory_lock(conn, "boundaries", ["admin_unit"])


def stage(conn: Connection, rows: pd.DataFrame) -> None:
    conn.execute(text(STAGE_DDL))
    copy_rows(conn, "stage_boundary", COPY_COLUMNS, rows)
    conn.execute(text("ANALYZE stage_boundary"))


def _apply(conn: Connection, run_id: int, source: str) -> None:
    """Write the versions ``boundary_plan`` (unit_id, geom, action) says are new or
    changed: close the current one, add the next, set the unit's geom."""
    params = {"run": run_id, "source": source}
    conn.execute(text("""
        UPDATE admin.unit_boundary b SET valid_to = now(), superseded_by_run = :run
          FROM boundary_plan p
         WHERE p.action = 'changed' AND b.unit_id = p.unit_id AND b.valid_to IS NULL
    """), params)
    conn.execute(text("""
        INSERT INTO admin.unit_boundary (unit_id, version, source, geom, load_run_id)
        SELECT p.unit_id, coalesce(max(b.version), 0) + 1, :source, p.geom, :run
          FROM boundary_plan p
          LEFT JOIN admin.unit_boundary b ON b.unit_id = p.unit_id
         WHERE p.action IN ('new', 'changed')
         GROUP BY p.unit_id, p.geom
    """), params)
    conn.execute(text("""
        UPDATE admin.admin_unit u SET geom = p.geom, geom_is_extent = false
          FROM boundary_plan p
         WHERE p.action IN ('new', 'changed') AND u.id = p.unit_id
    """))


def merge(conn: Connection, run_id: int, period: str) -> tuple[dict[str, int], list[Issue]]:
    """Merge stage_boundary; derive the parents; return (counts, notes)."""
    conn.execute(text("""
        CREATE TEMP TABLE boundary_plan ON COMMIT DROP AS
        SELECT s.unit_id, s.geom,
               CASE WHEN b.unit_id IS NULL THEN 'new'
                    WHEN b.source <> 'delivered' OR ST_AsBinary(b.geom) <> ST_AsBinary(s.geom)
                    THEN 'changed' ELSE 'unchanged' END AS action
          FROM stage_boundary s
          LEFT JOIN admin.unit_boundary b ON b.unit_id = s.unit_id AND b.valid_to IS NULL
    """))
    _apply(conn, run_id, "delivered")
    counts = dict(conn.execute(text(
        "SELECT action, count(*) FROM boundary_plan GROUP BY action")).all())
    conn.execute(text("CREATE TEMP TABLE touched_unit ON COMMIT DROP AS "
                      "SELECT unit_id FROM stage_boundary"))
    derived, notes = 0, []
    for child, parent in DERIVED[period]:
        n, found = _derive(conn, run_id, child, parent, PERIODS[period])
        derived += n
        notes += found
    return {"inserted": counts.get("new", 0), "updated": counts.get("changed", 0),
            "unchanged": counts.get("unchanged", 0), "derived": derived}, notes


def _derive(conn: Connection, run_id: int, child: str, parent: str, on: date
            ) -> tuple[int, list[Issue]]:
    """Parents (of ``parent`` level) of the touched units whose boundary was never
    delivered: the union of their children's boundaries, once every child has one.
    Returns (parents derived anew or changed, a note per parent still incomplete)."""
    conn.execute(text("DROP TABLE IF EXISTS boundary_plan"))
    params = {"child": child, "parent": parent, "on": on}
    conn.execute(text(f"""
        CREATE TEMP TABLE boundary_plan ON COMMIT DROP AS
        WITH parents AS (
            SELECT DISTINCT p.id, p.code
              FROM admin.admin_unit c
              JOIN admin.admin_unit p ON p.level = :parent AND p.code = c.parent_code
                                     AND {VALID_ON.format(u='p')}
             WHERE c.level = :child AND c.id IN (SELECT unit_id FROM touched_unit)),
        children AS (
            SELECT t.id, t.code, count(*) AS n,
                   count(*) FILTER (WHERE c.geom IS NOT NULL AND NOT c.geom_is_extent)
                   AS bounded,
                   ST_Multi(ST_Union(c.geom ORDER BY c.code)) AS geom
              FROM parents t
              JOIN admin.admin_unit c ON c.level = :child AND c.parent_code = t.code
                                     AND {VALID_ON.format(u='c')}
             GROUP BY t.id, t.code)
        SELECT ch.id AS unit_id, ch.code, ch.n, ch.bounded,
               CASE WHEN ch.bounded = ch.n THEN ch.geom END AS geom,
               CASE WHEN b.source = 'delivered' THEN 'delivered'
                    WHEN ch.bounded < ch.n THEN 'incomplete'
                    WHEN b.unit_id IS NULL THEN 'new'
                    WHEN ST_AsBinary(b.geom) <> ST_AsBinary(ch.geom) THEN 'changed'
                    ELSE 'unchanged' END AS action
          FROM children ch
          LEFT JOIN admin.unit_boundary b ON b.unit_id = ch.id AND b.valid_to IS NULL
    """), params)
    _apply(conn, run_id, "derived")
    conn.execute(text("INSERT INTO touched_unit SELECT unit_id FROM boundary_plan"))
    derived = conn.execute(text(
        "SELECT count(*) FROM boundary_plan WHERE action IN ('new', 'changed')")).scalar()
    notes = [Issue(0, "geometry", f"{parent} {r.code}: {r.bounded} of its {r.n} "
                   f"{child}s have a boundary; its boundary is the union of theirs once "
                   f"all have one (until then it has {'its extent' if r.has_extent else 'none'})",
                   r.code, severity="note")
             for r in conn.execute(text("""
                 SELECT p.code, p.n, p.bounded, u.geom IS NOT NULL AS has_extent
                   FROM boundary_plan p JOIN admin.admin_unit u ON u.id = p.unit_id
                  WHERE p.action = 'incomplete' ORDER BY p.code"""))]
    return derived, notes
