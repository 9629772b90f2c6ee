"""The low-zoom summary redraws a unit's shape only where its parcels' geometry changed.

``cadastre.refresh_parcel_summary(districts)`` (0016) deleted and rebuilt every unit of
the districts it was given, its shape included: the union of a commune's parcels where no
boundary is loaded. That union is most of a district re-delivery's merge (the bench's
one district delivered again, 1% of the stated areas changed: its shapes cannot have
moved). ``refresh_parcel_summary(districts, redraw)`` recounts every unit of
``districts`` (parcels, area, land-use mix) and draws again the shapes of units in
``redraw`` (NULL: all of them) only; a unit it has never drawn is drawn in any case. The
loader passes the districts where a parcel was added, retired or took a new geometry.
The one-argument form stays, redrawing everything, as before.

Units are upserted rather than deleted and inserted; a unit with no current parcel left
is deleted, as the rebuild did.

Revision ID: 0023
Revises: 0021
Create Date: 2026-12-02
"""

from alembic import op

from landplatform.migrate import sibling_migration

revision = "0023"
down_revision = "0021"
branch_labels = None
depends_on = None


# 0016: the units' CTEs and row sources this function builds on, and its function
# for the way back.
BEFORE = sibling_migration(__file__, "0016_parcel_summary.py")

# A unit is drawn when its district is to be redrawn or it has no row yet.
DRAW = "(redraw IS NULL OR u.district_code = ANY(redraw) OR o.code IS NULL)"

UPSERT = (BEFORE.UNITS.replace("{scope}", "district_code = ANY(districts)")
          + f"""  ), agg AS (
      SELECT u.code, min(u.district_code) AS district_code, count(*) AS parcels,
             sum(u.area) AS area, bool_or({DRAW}) AS drawn, {{shape}} AS derived
        FROM units u LEFT JOIN boundary b USING (code)
        LEFT JOIN cadastre.parcel_summary o ON o.level = '{{level}}' AND o.code = u.code
       GROUP BY 1
  )
  INSERT INTO cadastre.parcel_summary AS s
         (level, code, district_code, commune_code, unit_name, parcel_count, area_m2,
          dominant_land_use, dominant_share, land_use_mix, shape_source, geom, updated_at)
  SELECT '{{level}}', a.code, a.district_code, {{commune}}, n.name, a.parcels,
         round(a.area::numeric, 1), m.dominant, round(m.share::numeric, 3), m.top,
         CASE WHEN b.geom IS NULL THEN 'parcels' ELSE 'boundary' END,
         CASE WHEN b.geom IS NULL AND NOT a.drawn  -- kept: the row's own shape, below
              THEN ST_GeomFromText('MULTIPOLYGON EMPTY', 4326)
              ELSE ST_Multi(ST_CollectionExtract(ST_SimplifyPreserveTopology(
                       coalesce(b.geom, a.derived), {BEFORE.SIMPLIFY_DEG}), 3)) END,
         now()""" + BEFORE.SOURCES + """
  ON CONFLICT (level, code) DO UPDATE
     SET district_code = EXCLUDED.district_code, commune_code = EXCLUDED.commune_code,
         unit_name = EXCLUDED.unit_name, parcel_count = EXCLUDED.parcel_count,
         area_m2 = EXCLUDED.area_m2, dominant_land_use = EXCLUDED.dominant_land_use,
         dominant_share = EXCLUDED.dominant_share, land_use_mix = EXCLUDED.land_use_mix,
         shape_source = EXCLUDED.shape_source,
         geom = CASE WHEN ST_IsEmpty(EXCLUDED.geom) THEN s.geom ELSE EXCLUDED.geom END,
         updated_at = EXCLUDED.updated_at;
""")
COMMUNES = UPSERT.format(
    level="commune", code="commune_code", commune="a.code",
    shape=f"ST_Union(u.geom) FILTER (WHERE b.code IS NULL AND {DRAW})")
# a district's derived shape: the union of its communes' (just written), not its parcels'
DISTRICTS = UPSERT.format(
    level="district", code="district_code", commune="NULL",
    shape=f"""CASE WHEN bool_or({DRAW}) THEN (
                 SELECT ST_Union(c.geom) FROM cadastre.parcel_summary c
                  WHERE c.level = 'commune' AND c.district_code = min(u.district_code)
                    AND bool_and(b.code IS NULL)) END""")

# plpgsql, so that ``districts`` reaches every statement as a plain array: the planner
# then prunes the parcels to the districts' partitions (``districts IS NULL OR ...`` in a
# SQL function scanned every partition).
FUNCTION = f"""
CREATE FUNCTION cadastre.refresh_parcel_summary(districts text[], redraw text[])
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  IF districts IS NULL THEN  -- every district that has or had a summary
    districts := ARRAY(SELECT district_code FROM cadastre.district_summary
                       UNION SELECT district_code FROM cadastre.parcel_summary);
  END IF;
  -- units of these districts with no current parcel left
  DELETE FROM cadastre.parcel_summary s
   WHERE s.district_code = ANY(districts)
     AND NOT EXISTS (
         SELECT 1 FROM cadastre.parcel p
          WHERE p.status = 'current' AND p.district_code = s.district_code
            AND (s.level = 'district' OR p.commune_code = s.code));
{COMMUNES}
{DISTRICTS}
END
$fn$
"""

ONE_ARGUMENT = """
CREATE FUNCTION cadastre.refresh_parcel_summary(districts text[]) RETURNS void
LANGUAGE sql AS $fn$ SELECT cadastre.refresh_parcel_summary(districts, NULL) $fn$
"""


def upgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS cadastre.refresh_parcel_summary(text[])")
    op.execute(FUNCTION)
    op.execute(ONE_ARGUMENT)


def downgrade() -> None:
    op.execute("DROP FUNCTION cadastre.refresh_parcel_summary(text[])")
    op.execute("DROP FUNCTION cadastre.refresh_parcel_summary(text[], text[])")
    op.execute(BEFORE.REFRESH.format(insert=BEFORE.COMMUNES + BEFORE.DISTRICTS))
