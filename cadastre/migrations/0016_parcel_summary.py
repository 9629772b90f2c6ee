"""The parcels at low zoom: one shape per district and per commune with its parcel count,
stated area and dominant land use, so a national or provincial map of the parcels
collection shows something where single parcels are too small to draw.

- ``cadastre.parcel_summary``: one row per (level, unit) that has current parcels. The
  shape is the unit's delivered boundary (``admin.admin_unit.geom`` where it is not an
  extent: the boundaries domain loads it) or else the union of its parcels, simplified to
  about two metres (finer than a pixel at z11). Dominant land use: the primary code that
  covers the most stated area (drawn area where none is stated).
- ``cadastre.refresh_parcel_summary(districts text[])``: recomputes the given districts
  (NULL: all), set-wise, in the caller's transaction. The loader, the API writes and the
  dossiers call it where they recount ``district_summary``, so the low-zoom tiles are as
  current as the parcels after every load.
- ``publish.parcel_summary_district`` and ``publish.parcel_summary_commune``: what the
  parcels layer declares as its generalised tile sources (``cadastre/layers.py``); the
  grants at the end of every migration give ``lis_public`` SELECT on them.

Revision ID: 0016
Revises: 0012
Create Date: 2026-12-02
"""

from alembic import op

revision = "0016"
down_revision = "0012"
branch_labels = None
depends_on = None

# degrees; about 2 m in Vietnam: below a pixel of z11, so no tile shows the difference
SIMPLIFY_DEG = 0.00002

# Communes first (their shapes from their parcels), then districts (theirs from their
# communes' shapes): each parcel geometry goes into one union only.
REFRESH = """
CREATE FUNCTION cadastre.refresh_parcel_summary(districts text[]) RETURNS void
LANGUAGE sql AS $fn$
  DELETE FROM cadastre.parcel_summary
   WHERE districts IS NULL OR district_code = ANY(districts);
{insert}
$fn$
"""
# The units of the districts (``{scope}`` picks their parcels), their land-use mix and
# delivered boundaries, as CTEs; and what a unit's row is selected from. 0023 builds
# on both.
UNITS = """
  WITH p AS (
      SELECT district_code, commune_code, split_part(land_use, '+', 1) AS use,
             coalesce(area_m2, ST_Area(geom::geography)) AS area, geom
        FROM cadastre.parcel
       WHERE status = 'current' AND {scope}
  ), units AS (
      SELECT {code} AS code, district_code, use, area, geom FROM p
  ), ranked AS (
      SELECT code, use, row_number() OVER (PARTITION BY code ORDER BY area DESC, use) AS rank,
             area / nullif(sum(area) OVER (PARTITION BY code), 0) AS share
        FROM (SELECT code, use, sum(area) AS area FROM units GROUP BY 1, 2) s
  ), mix AS (
      SELECT code, max(use) FILTER (WHERE rank = 1) AS dominant,
             max(share) FILTER (WHERE rank = 1) AS share,
             string_agg(use || ' ' || round(100 * share) || '%', ', ' ORDER BY rank)
                 FILTER (WHERE rank <= 4) AS top
        FROM ranked GROUP BY 1
  ), boundary AS (  -- the delivered boundary of the unit as it stood before 2025
      SELECT code, geom FROM admin.admin_unit
       WHERE level = '{level}' AND valid_to = DATE '2025-06-30'
         AND geom IS NOT NULL AND NOT geom_is_extent
"""
SOURCES = """
    FROM agg a
    JOIN mix m USING (code)
    LEFT JOIN boundary b USING (code)
    LEFT JOIN LATERAL (
        SELECT name FROM admin.admin_unit n
         WHERE n.level = '{level}' AND n.code = a.code
         ORDER BY n.valid_to DESC NULLS FIRST LIMIT 1) n ON true"""
INSERT = (UNITS.replace("{scope}", "(districts IS NULL OR district_code = ANY(districts))")
          + f"""  ), agg AS (
      SELECT u.code, min(u.district_code) AS district_code, count(*) AS parcels,
             sum(u.area) AS area, {{shape}} AS derived
        FROM units u LEFT JOIN boundary b USING (code)
       GROUP BY 1
  )
  INSERT INTO cadastre.parcel_summary
         (level, code, district_code, commune_code, unit_name, parcel_count, area_m2,
          dominant_land_use, dominant_share, land_use_mix, shape_source, geom, updated_at)
  SELECT '{{level}}', a.code, a.district_code, {{commune}}, n.name, a.parcels,
         round(a.area::numeric, 1), m.dominant, round(m.share::numeric, 3), m.top,
         CASE WHEN b.geom IS NULL THEN 'parcels' ELSE 'boundary' END,
         ST_Multi(ST_CollectionExtract(ST_SimplifyPreserveTopology(
             coalesce(b.geom, a.derived), {SIMPLIFY_DEG}), 3)),
         now()""" + SOURCES + ";\n")
COMMUNES = INSERT.format(
    level="commune", code="commune_code", commune="a.code",
    shape="ST_Union(u.geom) FILTER (WHERE b.code IS NULL)")
# a district's derived shape: the union of its communes' (just written), not its parcels'
DISTRICTS = INSERT.format(
    level="district", code="district_code", commune="NULL",
    shape="""(SELECT ST_Union(c.geom) FROM cadastre.parcel_summary c
                 WHERE c.level = 'commune' AND c.district_code = min(u.district_code)
                   AND bool_and(b.code IS NULL))""")


def _view(level: str) -> str:
    return f"""
        CREATE VIEW publish.parcel_summary_{level} AS
        SELECT code::bigint AS id, level, district_code, commune_code, unit_name,
               parcel_count, area_m2, dominant_land_use AS primary_land_use,
               dominant_share, land_use_mix, shape_source, updated_at, geom
          FROM cadastre.parcel_summary
         WHERE level = '{level}'
    """


def upgrade() -> None:
    op.execute("""
        CREATE TABLE cadastre.parcel_summary (
            level text NOT NULL CHECK (level IN ('district', 'commune')),
            code text NOT NULL,
            district_code text NOT NULL,
            commune_code text,
            unit_name text,
            parcel_count bigint NOT NULL,
            area_m2 numeric(16, 1),
            dominant_land_use text,
            dominant_share numeric(4, 3),
            land_use_mix text,
            shape_source text NOT NULL CHECK (shape_source IN ('boundary', 'parcels')),
            geom geometry(MultiPolygon, 4326) NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (level, code)
        )
    """)
    op.execute("CREATE INDEX parcel_summary_district_idx ON cadastre.parcel_summary "
               "(district_code)")
    op.execute("CREATE INDEX parcel_summary_geom_idx ON cadastre.parcel_summary "
               "USING gist (geom)")
    op.execute(REFRESH.format(insert=COMMUNES + DISTRICTS))
    op.execute("SELECT cadastre.refresh_parcel_summary(NULL)")
    for level in ("district", "commune"):
        op.execute(_view(level))


def downgrade() -> None:
    for level in ("district", "commune"):
        op.execute(f"DROP VIEW publish.parcel_summary_{level}")
    op.execute("DROP FUNCTION cadastre.refresh_parcel_summary(text[])")
    op.execute("DROP TABLE cadastre.parcel_summary")
