"""Inside the district, inside the commune: decided in the database, on the stage.

A district's bounding box says little about whether a feature is inside the district (two
neighbours' boxes overlap), so wherever a boundary is loaded (``admin.admin_unit.geom``
with ``geom_is_extent = false``; the ``boundaries`` domain loads them) the boundary
decides, give or take ``BOUNDARY_TOLERANCE_M``. Where only the district's extent is known
the check stays that box (give or take ``EXTENT_MARGIN_DEG``) and every answer says so;
where neither is known nothing is checked, and that is said too.

Why in SQL: a load stages its features anyway, the unit's boundary is in the database,
and one set-wise statement over the stage (each boundary buffered once, the feature
tested with ``ST_Covers``) costs a fraction of a Python call per feature. The units are
the pre-2025 ones the features name (a parcel keeps the commune it was surveyed under).

Shared by every loader that places features in a district: parcels (files, uploads, API
writes) and planning zones.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from etl.geometry import EXTENT_MARGIN_DEG
from etl.report import Issue

# A feature may stick out of its unit's boundary by this much and still be inside it:
# more than the noise between two maps of the same line (digitising, rounding, a datum
# shift applied with the wrong sign is 0.5-0.75 m), less than any parcel.
BOUNDARY_TOLERANCE_M = 3.0
PRE2025_END = "2025-06-30"  # the units parcels are surveyed under end here
EXTENT_ONLY = "only its extent"  # what the notes say, and how_checked reads back
UNCHECKED = "neither a boundary nor an extent loaded"

LOCATE = """
WITH s AS MATERIALIZED ({staged}),
units AS MATERIALIZED (
    SELECT u.level, u.code, u.geom, u.geom_is_extent,
           CASE WHEN u.geom_is_extent THEN ST_Expand(u.geom, :margin)
                ELSE ST_Buffer(u.geom::geography, :tolerance)::geometry END AS grown
      FROM admin.admin_unit u
     WHERE u.valid_to = CAST(:pre AS date) AND u.geom IS NOT NULL
       AND ((u.level = 'district' AND u.code IN (SELECT district_code FROM s))
         OR (u.level = 'commune' AND NOT u.geom_is_extent
             AND u.code IN (SELECT commune_code FROM s)))),
-- unit by unit, its features: the unit's geometry stays the same from one test to the
-- next, so PostGIS prepares it once (features in file order change commune every few);
-- ST_Covers, as PostGIS prepares the first argument of a covers test
outside_unit AS (
    SELECT u.level, u.code, u.geom_is_extent AS by_extent, x.feature_no
      FROM units u
     CROSS JOIN LATERAL (
           SELECT s.feature_no FROM s
            WHERE CASE u.level WHEN 'district' THEN s.district_code
                               ELSE s.commune_code END = u.code
              AND NOT ST_Covers(u.geom, s.geom)  -- inside the line: no buffer needed
              AND NOT ST_Covers(u.grown, s.geom)) x),
outside AS (  -- outside its district; else, inside it, outside its commune
    SELECT * FROM outside_unit WHERE level = 'district'
    UNION ALL
    SELECT * FROM outside_unit c
     WHERE c.level = 'commune' AND NOT EXISTS (
           SELECT 1 FROM outside_unit d
            WHERE d.level = 'district' AND d.feature_no = c.feature_no))
SELECT o.feature_no, o.level, o.code, o.by_extent,
       round(ST_Area(ST_Difference(s.geom, u.geom)::geography)::numeric, 1)::float8
       AS outside_m2,
       -- the unit of that level it lies in most, by its boundary
       (SELECT n.code FROM admin.admin_unit n
         WHERE n.level = o.level AND n.valid_to = CAST(:pre AS date)
           AND NOT n.geom_is_extent AND n.code <> o.code
           AND n.geom && s.geom AND ST_Intersects(n.geom, s.geom)
         ORDER BY ST_Area(ST_Intersection(n.geom, s.geom)) DESC, n.code LIMIT 1) AS lies_in
  FROM outside o
  JOIN s USING (feature_no)
  JOIN units u ON u.level = o.level AND u.code = o.code
 ORDER BY o.feature_no
"""
# The districts of the stage whose boundary is not known: only an extent, or nothing.
UNBOUNDED = """
SELECT s.district_code, u.geom IS NOT NULL AS has_extent
  FROM (SELECT DISTINCT district_code FROM ({staged}) x) s
  LEFT JOIN admin.admin_unit u
    ON u.level = 'district' AND u.code = s.district_code
   AND u.valid_to = CAST(:pre AS date)
 WHERE s.district_code IS NOT NULL AND (u.geom IS NULL OR u.geom_is_extent)
 ORDER BY 1
"""


@dataclass(frozen=True)
class Outside:
    """A staged feature outside its district (or, inside it, outside its commune)."""

    feature_no: int
    level: str  # district | commune
    code: str
    by_extent: bool  # only the district's extent was known
    outside_m2: float  # its area outside the unit (the boundary or box itself)
    lies_in: str | None  # the unit of that level it lies in most, where known


def locate_staged(conn: Connection, staged: str, noun: str = "parcel"
                  ) -> tuple[list[Outside], list[Issue]]:
    """(features outside their unit, notes on how far the check could go) for the rows of
    ``staged``: a SELECT of ``feature_no, district_code, commune_code, geom`` (a constant
    of the caller's, naming its stage table; ``commune_code`` may be NULL)."""
    params = {"tolerance": BOUNDARY_TOLERANCE_M, "margin": EXTENT_MARGIN_DEG,
              "pre": PRE2025_END}
    outside = [Outside(*r) for r in conn.execute(text(LOCATE.format(staged=staged)), params)]
    notes = []
    for district, has_extent in conn.execute(text(UNBOUNDED.format(staged=staged)), params):
        reason = (f"district {district} has no boundary loaded, {EXTENT_ONLY} (a "
                  f"bounding box): whether its {noun}s lie inside it was checked against "
                  "that box only" if has_extent else
                  f"district {district} has {UNCHECKED}: whether its {noun}s lie inside it "
                  "was not checked")
        notes.append(Issue(0, "geometry", reason, district, severity="note"))
    return outside, notes


def how_checked(issues: list[Issue]) -> str:
    """What decided "inside the district" for features with these issues: ``boundary``,
    ``extent`` (only a bounding box was known) or ``none`` (nothing was known)."""
    notes = [i.reason for i in issues if i.severity == "note" and i.feature_no == 0]
    if any(UNCHECKED in n for n in notes):
        return "none"
    if any(EXTENT_ONLY in n for n in notes):
        return "extent"
    return "boundary"


def outside_issues(rows: list[Outside], noun: str = "parcel") -> list[Issue]:
    """A located reject per feature outside its unit, saying what was checked."""
    issues = []
    for r in rows:
        where = f"; it lies in {r.level} {r.lies_in}" if r.lies_in else ""
        if r.by_extent:
            issues.append(Issue(r.feature_no, "geometry", f"{noun} lies outside district "
                                f"{r.code}'s extent (a bounding box, give or take "
                                f"{EXTENT_MARGIN_DEG:g}°; no boundary of the district is "
                                f"loaded){where}", r.code))
        elif r.level == "district":
            issues.append(Issue(r.feature_no, "geometry", f"{noun} lies outside district "
                                f"{r.code}'s boundary ({r.outside_m2:,.1f} m² of it, more "
                                f"than {BOUNDARY_TOLERANCE_M:g} m beyond the "
                                f"boundary){where}", r.code))
        else:
            issues.append(Issue(r.feature_no, "commune_code", f"{noun} lies outside the "
                                f"boundary of its commune {r.code} ({r.outside_m2:,.1f} m² "
                                f"of it, more than {BOUNDARY_TOLERANCE_M:g} m beyond the "
                                f"boundary){where}: is its commune code right?", r.code))
    return issues


def check_location(conn: Connection, staged: str, noun: str = "parcel"
                   ) -> tuple[list[Issue], list[Issue]]:
    """(rejects, notes): ``locate_staged`` worded as a loader's located issues."""
    outside, notes = locate_staged(conn, staged, noun)
    return outside_issues(outside, noun), notes
