"""The 2025 administrative units, first class: how a parcel got its 2025 commune, per-2025-
province counts, and the map sheets renumbered into the new communes.

- ``parcel.current_commune_source``: ``boundary`` (its point on surface lies inside a
  loaded 2025 commune boundary), ``crosswalk`` (no such boundary; its old commune went
  wholly into one new commune) or ``none`` (neither: the old commune was split and no
  boundary decides). Existing rows are classified here from what they hold, and placed
  by the 2025 boundaries already loaded, if any.
- Indexes for look-ups and filters by the 2025 commune and province (current parcels).
- ``cadastre.district_province_summary``: current parcels per pre-2025 district and 2025
  province with their extent, recounted per touched district with the district summary
  (``cadastre.current_units``), so the per-province collections are listed without
  scanning parcels and a load never recounts a whole province; ``publish.current_provinces``
  sums it per 2025 province.
- ``cadastre.sheet_crosswalk``: old commune + sheet -> new commune + sheet, loaded as data
  (``lis load sheet-crosswalk``); ``publish.sheet_crosswalk`` lets the public look-up
  answer by either number.
- ``publish.parcels`` and ``publish.parcel_versions`` gain ``current_commune_source``
  (superseded versions: not recorded, NULL).

Revision ID: 0017
Revises: 0012
Create Date: 2026-12-02
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

DELIVERY = """CASE WHEN r.kind = 'api' THEN 'api'
                   ELSE regexp_replace(r.file_name, '^.*[/\\\\]', '') END"""
VERSION_COLUMNS = """v.id, v.province_code, v.district_code, v.commune_code, v.sheet_no,
       v.parcel_no, v.parcel_ref, v.area_m2, v.legal_area_m2, v.land_use,
       v.primary_land_use, v.address, v.status, v.current_province_code,
       v.current_commune_code, v.valid_from, v.valid_to, v.load_run_id, v.ended_by_run,
       v.geom"""


def _versions_view(with_source: bool) -> str:
    """publish.parcel_versions as 0009 made it, with the source appended (``with_source``
    False: a NULL in its place, so a downgrade can drop the column under views that other
    domains' views depend on)."""
    columns = """{a}.province_code, {a}.district_code, {a}.commune_code, {a}.sheet_no,
                 {a}.parcel_no,
                 {a}.commune_code || '.' || {a}.sheet_no || '.' || {a}.parcel_no AS parcel_ref,
                 {a}.area_m2, {a}.legal_area_m2, {a}.land_use,
                 split_part({a}.land_use, '+', 1) AS primary_land_use, {a}.address,"""
    source = ", v.current_commune_source"
    inner = (", p.current_commune_source" if with_source else ", NULL::text") + \
        " AS current_commune_source"
    return f"""
        CREATE OR REPLACE VIEW publish.parcel_versions AS
        SELECT {VERSION_COLUMNS}, r.kind AS run_kind, {DELIVERY} AS delivery{source}
          FROM (
            SELECT p.uid AS id, {columns.format(a="p")}
                   p.status, p.current_province_code, p.current_commune_code,
                   p.valid_from, p.valid_to, p.load_run_id, NULL::bigint AS ended_by_run,
                   p.geom{inner}
              FROM cadastre.parcel p
             WHERE p.status = 'current'
                OR (p.status = 'historic' AND NOT EXISTS (
                    SELECT 1 FROM cadastre.parcel_history h
                     WHERE h.district_code = p.district_code AND h.uid = p.uid
                       AND h.valid_from = p.valid_from))
            UNION ALL
            SELECT h.uid AS id, {columns.format(a="h")}
                   CASE WHEN p.status = 'historic' AND p.valid_from = h.valid_from
                        THEN 'retired' ELSE 'superseded' END AS status,
                   h.current_province_code, h.current_commune_code,
                   h.valid_from, h.superseded_at AS valid_to, h.load_run_id,
                   h.superseded_by_run AS ended_by_run, h.geom, NULL::text
              FROM cadastre.parcel_history h
              JOIN cadastre.parcel p ON p.district_code = h.district_code AND p.uid = h.uid
          ) v
          LEFT JOIN etl.load_run r ON r.run_id = v.load_run_id
    """


def _parcels_view(with_source: bool) -> str:
    return f"""
        CREATE OR REPLACE VIEW publish.parcels AS
        SELECT p.uid AS id,
               p.province_code, p.district_code, p.commune_code,
               p.sheet_no, p.parcel_no,
               p.commune_code || '.' || p.sheet_no || '.' || p.parcel_no AS parcel_ref,
               p.area_m2, p.legal_area_m2, p.land_use,
               split_part(p.land_use, '+', 1) AS primary_land_use,
               p.address, p.status,
               p.current_province_code, p.current_commune_code,
               p.valid_from, p.geom, p.valid_to
               , {"p.current_commune_source" if with_source else "NULL::text"}
               AS current_commune_source
          FROM cadastre.parcel p
         WHERE p.status = 'current'
    """


def upgrade() -> None:
    op.execute("""
        ALTER TABLE cadastre.parcel ADD COLUMN current_commune_source text NOT NULL
            DEFAULT 'none' CONSTRAINT ck_current_commune_source
            CHECK (current_commune_source IN ('boundary', 'crosswalk', 'none'))
    """)
    op.execute("UPDATE cadastre.parcel SET current_commune_source = 'crosswalk' "
               "WHERE current_commune_code IS NOT NULL")
    # Where 2025 commune boundaries are loaded already, they decide (as
    # cadastre.current_units does: each boundary probed for all its parcels at once).
    op.execute("""
        WITH placed AS (
            SELECT DISTINCT ON (p.district_code, p.uid) p.district_code, p.uid, u.code,
                   u.parent_code
              FROM admin.admin_unit u
              JOIN cadastre.parcel p ON p.geom && u.geom
                                    AND ST_Intersects(u.geom, ST_PointOnSurface(p.geom))
             WHERE u.level = 'commune' AND u.valid_from >= DATE '2025-07-01'
               AND u.valid_to IS NULL AND u.geom IS NOT NULL AND NOT u.geom_is_extent
             ORDER BY p.district_code, p.uid, u.code)
        UPDATE cadastre.parcel p
           SET current_commune_code = x.code, current_province_code = x.parent_code,
               current_commune_source = 'boundary'
          FROM placed x
         WHERE p.district_code = x.district_code AND p.uid = x.uid
    """)
    op.execute("CREATE INDEX parcel_current_commune_idx ON cadastre.parcel "
               "(current_commune_code, sheet_no, parcel_no) WHERE status = 'current'")
    op.execute("CREATE INDEX parcel_current_province_idx ON cadastre.parcel "
               "(current_province_code) WHERE status = 'current'")
    op.execute("""
        CREATE TABLE cadastre.district_province_summary (
            district_code text NOT NULL,
            province_code text NOT NULL,
            parcel_count bigint NOT NULL,
            min_lon float8, min_lat float8, max_lon float8, max_lat float8,
            first_valid_from timestamptz,
            PRIMARY KEY (district_code, province_code)
        )
    """)
    op.execute("""
        INSERT INTO cadastre.district_province_summary
        SELECT district_code, current_province_code, count(*), ST_XMin(ST_Extent(geom)),
               ST_YMin(ST_Extent(geom)), ST_XMax(ST_Extent(geom)), ST_YMax(ST_Extent(geom)),
               min(valid_from)
          FROM cadastre.parcel
         WHERE status = 'current' AND current_province_code IS NOT NULL
         GROUP BY district_code, current_province_code
    """)
    op.execute("""
        CREATE VIEW publish.current_provinces AS
        SELECT s.province_code, p.name AS province_name, c.epsg AS tm3_epsg,
               s.parcel_count, s.district_count, s.min_lon, s.min_lat, s.max_lon, s.max_lat,
               s.first_valid_from
          FROM (SELECT province_code, sum(parcel_count)::bigint AS parcel_count,
                       count(*) AS district_count, min(min_lon) AS min_lon,
                       min(min_lat) AS min_lat, max(max_lon) AS max_lon,
                       max(max_lat) AS max_lat, min(first_valid_from) AS first_valid_from
                  FROM cadastre.district_province_summary
                 WHERE parcel_count > 0 GROUP BY province_code) s
          JOIN admin.admin_unit p ON p.level = 'province' AND p.code = s.province_code
                                 AND p.valid_from = DATE '2025-07-01'
          LEFT JOIN admin.province_crs c ON c.province_code = s.province_code
    """)
    op.execute("""
        CREATE TABLE cadastre.sheet_crosswalk (
            old_commune_code text NOT NULL,
            old_sheet_no integer NOT NULL CHECK (old_sheet_no > 0),
            new_commune_code text NOT NULL,
            new_sheet_no integer NOT NULL CHECK (new_sheet_no > 0),
            load_run_id bigint NOT NULL REFERENCES etl.load_run (run_id),
            PRIMARY KEY (old_commune_code, old_sheet_no),
            CONSTRAINT sheet_crosswalk_new_uq UNIQUE (new_commune_code, new_sheet_no)
        )
    """)
    op.execute("""
        CREATE VIEW publish.sheet_crosswalk AS
        SELECT old_commune_code, old_sheet_no, new_commune_code, new_sheet_no
          FROM cadastre.sheet_crosswalk
    """)
    op.execute(_parcels_view(True))
    op.execute(_versions_view(True))
    op.execute("GRANT SELECT ON publish.current_provinces, publish.sheet_crosswalk "
               "TO lis_public")


def downgrade() -> None:
    # A view cannot lose a column in place and other domains' views depend on these:
    # the column stays, NULL, and no longer reads the table's.
    op.execute(_parcels_view(False))
    op.execute(_versions_view(False))
    op.execute("DROP VIEW publish.sheet_crosswalk, publish.current_provinces")
    op.execute("DROP TABLE cadastre.sheet_crosswalk, cadastre.district_province_summary")
    op.execute("DROP INDEX cadastre.parcel_current_commune_idx, "
               "cadastre.parcel_current_province_idx")
    op.execute("ALTER TABLE cadastre.parcel DROP COLUMN current_commune_source")
