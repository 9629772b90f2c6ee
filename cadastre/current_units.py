"""A parcel's 2025 commune and province, decided in the database, set-wise.

A parcel keeps the commune it was surveyed under (``commune_code``, a pre-2025 unit); its
current unit since the 1 July 2025 reform is derived (domain.md). Where an old commune
went into several new ones only a boundary can decide, so:

1. ``boundary``: the parcel's ``ST_PointOnSurface`` lies inside a loaded 2025 commune
   boundary (``admin.admin_unit`` of a unit valid today, ``geom_is_extent = false``):
   the point lies inside the parcel (a centroid may not), so one point of the parcel
   decides, and a point on a line two communes share goes to the lower code;
2. ``crosswalk``: no such boundary, and the old commune went wholly into one new commune
   (``admin.admin_unit_map``: one row, ``full``);
3. ``none``: neither (the old commune was split and no boundary decides); the province
   is still the crosswalk's where it is one.

It runs on a parcel merge's stage before the merge writes it (``assign_stage``: loads,
uploads and officers' API writes all merge through ``cadastre.merge``), so the merge
writes the 2025 units (``current_province_code``, ``current_commune_code``,
``current_commune_source``) with the rest of the row; and after a 2025 boundary load, in
place, for the parcels under the boundaries it changed (``assign_under_units``): a new
boundary is new knowledge about the units, not a change of the parcel, so it makes no
version. ``refresh_summary`` keeps the per-district-and-2025-province
counts the per-province collections read.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

SOURCES = ("boundary", "crosswalk", "none")
VALID_NOW = ("coalesce({u}.valid_from, '-infinity'::date) <= current_date "
             "AND coalesce({u}.valid_to, 'infinity'::date) >= current_date")

# {targets}: a SELECT of (district_code, uid) of the parcels to assign. Their points go
# into a temp table with a spatial index, so the boundaries can be probed unit by unit.
TARGETS = """
CREATE TEMP TABLE current_unit_target ON COMMIT DROP AS
SELECT p.district_code, p.uid, p.commune_code, ST_PointOnSurface(p.geom) AS pt,
       p.current_province_code AS old_province, p.current_commune_code AS old_commune,
       p.current_commune_source AS old_source
  FROM cadastre.parcel p
  JOIN ({targets}) x (district_code, uid)
    ON p.district_code = x.district_code AND p.uid = x.uid
"""
# Unit by unit, its parcels' points: the boundary stays the same from one test to the next,
# so PostGIS prepares it once (parcels in file order change commune every few; probing
# the boundaries parcel by parcel re-read each boundary's every vertex per parcel).
PLAN = f"""
CREATE TEMP TABLE current_unit_plan ON COMMIT DROP AS
WITH units AS MATERIALIZED (
    SELECT u.code, u.parent_code, u.geom FROM admin.admin_unit u
     WHERE u.level = 'commune' AND u.valid_from IS NOT NULL AND {VALID_NOW.format(u='u')}
       AND u.geom IS NOT NULL AND NOT u.geom_is_extent
       AND u.geom && (SELECT ST_SetSRID(ST_Extent(pt)::geometry, 4326)
                        FROM current_unit_target)),
by_boundary AS (
    SELECT DISTINCT ON (t.district_code, t.uid) t.district_code, t.uid, u.code,
           u.parent_code
      FROM units u
     CROSS JOIN LATERAL (
           SELECT t.district_code, t.uid FROM current_unit_target t
            WHERE t.pt && u.geom AND ST_Intersects(u.geom, t.pt)) t
     -- a point on a line two communes share: the lower code
     ORDER BY t.district_code, t.uid, u.code),
by_crosswalk AS (
    SELECT m.old_code, min(m.new_province_code) AS province,
           CASE WHEN count(*) = 1 AND bool_and(m.overlap = 'full') THEN min(m.new_code) END
           AS commune
      FROM admin.admin_unit_map m
     WHERE m.old_code IN (SELECT DISTINCT commune_code FROM current_unit_target)
     GROUP BY m.old_code)
SELECT t.district_code, t.uid, t.old_province, t.old_commune, t.old_source,
       coalesce(b.parent_code, x.province) AS province,
       coalesce(b.code, x.commune) AS commune,
       CASE WHEN b.code IS NOT NULL THEN 'boundary'
            WHEN x.commune IS NOT NULL THEN 'crosswalk' ELSE 'none' END AS source
  FROM current_unit_target t
  LEFT JOIN by_boundary b ON b.district_code = t.district_code AND b.uid = t.uid
  LEFT JOIN by_crosswalk x ON x.old_code = t.commune_code
"""
APPLY = """
UPDATE cadastre.parcel p
   SET current_province_code = c.province, current_commune_code = c.commune,
       current_commune_source = c.source
  FROM current_unit_plan c
 WHERE p.district_code = c.district_code AND p.uid = c.uid
   AND (c.old_province, c.old_commune, c.old_source)
       IS DISTINCT FROM (c.province, c.commune, c.source)
"""
# A merge's stage, before the merge writes it (the staged row's feature_no as its key).
STAGE_TARGETS = """
CREATE TEMP TABLE current_unit_target ON COMMIT DROP AS
SELECT s.district_code, s.feature_no::bigint AS uid, s.commune_code,
       ST_PointOnSurface(s.geom) AS pt, NULL::text AS old_province,
       NULL::text AS old_commune, NULL::text AS old_source
  FROM stage_parcel s
"""
STAGE_APPLY = """
UPDATE stage_parcel s
   SET current_province_code = c.province, current_commune_code = c.commune,
       current_commune_source = c.source
  FROM current_unit_plan c
 WHERE s.feature_no = c.uid
"""


def _plan(conn: Connection, targets_sql: str, params: dict | None = None) -> None:
    conn.execute(text("DROP TABLE IF EXISTS current_unit_plan, current_unit_target"))
    conn.execute(text(targets_sql), params or {})
    conn.execute(text("CREATE INDEX ON current_unit_target USING gist (pt)"))
    conn.execute(text("ANALYZE current_unit_target"))
    conn.execute(text(PLAN))
    conn.execute(text("ANALYZE current_unit_plan"))  # the UPDATE's join is planned on it


def _by_source(conn: Connection) -> dict[str, int]:
    found = dict(conn.execute(text(
        "SELECT source, count(*) FROM current_unit_plan GROUP BY source")).all())
    return {f"current_by_{s}": int(found.get(s, 0)) for s in SOURCES}


def assign_stage(conn: Connection) -> dict[str, int]:
    """Before a parcel merge (its one-line hook): the staged parcels' 2025 units, set on
    the stage, so the merge writes each row once, compares them as it compares the other
    attributes (a re-load of the same file changes nothing) and versions a change."""
    conn.execute(text("ALTER TABLE stage_parcel "
                      "ADD COLUMN IF NOT EXISTS current_commune_source text"))
    _plan(conn, STAGE_TARGETS)
    conn.execute(text(STAGE_APPLY))
    return _by_source(conn)


def assign(conn: Connection, targets: str, params: dict | None = None) -> dict[str, int]:
    """Assign, in place, the 2025 units of the current parcels ``targets`` selects
    (``district_code, uid``; a constant of the caller's, bound with ``params``); returns
    how many changed and how many parcels each source decided."""
    _plan(conn, TARGETS.format(targets=targets), params)
    changed = conn.execute(text(APPLY)).rowcount
    return {"current_units_changed": changed, **_by_source(conn)}


def assign_under_units(conn: Connection, unit_ids: list[int]) -> dict[str, int]:
    """After a 2025 boundary load: the current parcels under any version (old or new) of
    the given units' boundaries, and those a boundary of these units had decided (a
    boundary that shrank lets them go). The districts touched are recounted."""
    if not unit_ids:
        return {"current_units_changed": 0}
    conn.execute(text("DROP TABLE IF EXISTS current_unit_area"))
    conn.execute(text("""
        CREATE TEMP TABLE current_unit_area ON COMMIT DROP AS
        SELECT u.code, b.geom FROM admin.unit_boundary b
          JOIN admin.admin_unit u ON u.id = b.unit_id
         WHERE b.unit_id = ANY(:ids)
    """), {"ids": unit_ids})
    counts = assign(conn, """
        SELECT p.district_code, p.uid FROM cadastre.parcel p
         WHERE p.status = 'current' AND EXISTS (
               SELECT 1 FROM current_unit_area a
                WHERE a.geom && p.geom AND ST_Intersects(a.geom, p.geom))
        UNION
        SELECT p.district_code, p.uid FROM cadastre.parcel p
         WHERE p.status = 'current' AND p.current_commune_source = 'boundary'
           AND p.current_commune_code IN (SELECT code FROM current_unit_area)
    """)
    districts = conn.execute(text(
        "SELECT DISTINCT district_code FROM current_unit_plan")).scalars().all()
    refresh_summary(conn, list(districts))
    return counts


def refresh_summary(conn: Connection, districts: list[str] | None = None) -> None:
    """Recount current parcels per 2025 province of the touched districts (one indexed
    scan per district, as the district summary): those of ``stage_parcel``, or
    ``districts``. A whole province is never scanned."""
    touched = ("SELECT DISTINCT district_code FROM stage_parcel" if districts is None
               else "SELECT unnest(CAST(:districts AS text[]))")
    params = {} if districts is None else {"districts": districts}
    conn.execute(text(f"""
        DELETE FROM cadastre.district_province_summary
         WHERE district_code IN ({touched})
    """), params)
    conn.execute(text(f"""
        INSERT INTO cadastre.district_province_summary
               (district_code, province_code, parcel_count, min_lon, min_lat, max_lon,
                max_lat, first_valid_from)
        SELECT p.district_code, p.current_province_code, count(*),
               ST_XMin(ST_Extent(p.geom)), ST_YMin(ST_Extent(p.geom)),
               ST_XMax(ST_Extent(p.geom)), ST_YMax(ST_Extent(p.geom)), min(p.valid_from)
          FROM cadastre.parcel p
         WHERE p.district_code IN ({touched}) AND p.status = 'current'
           AND p.current_province_code IS NOT NULL
         GROUP BY p.district_code, p.current_province_code
    """), params)
