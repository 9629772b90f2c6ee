"""Publication views and the read-only role the API runs as.

The API reads only ``publish.*`` views, as the role ``lis_public`` that has no privilege
on ``restricted`` or the base tables (made, as a LOGIN role, by
``landplatform/sql/roles.sql`` before the first migration; made here NOLOGIN only for a
database set up without it): a public response cannot carry a party, right or certificate
even if a query were wrong. Views run with their owner's rights, so
the role needs nothing but SELECT on them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE VIEW publish.parcels AS
        SELECT p.uid AS id,
               p.province_code, p.district_code, p.commune_code,
               p.sheet_no, p.parcel_no,
               -- dotted, not dashed: GDAL/QGIS would read '00001-1-5' as a date
               p.commune_code || '.' || p.sheet_no || '.' || p.parcel_no AS parcel_ref,
               p.area_m2, p.legal_area_m2, p.land_use,
               split_part(p.land_use, '+', 1) AS primary_land_use,
               p.address, p.status,
               p.current_province_code, p.current_commune_code,
               p.valid_from, p.geom
          FROM cadastre.parcel p
         WHERE p.status = 'current'
    """)
    op.execute("""
        CREATE VIEW publish.land_use_types AS
        SELECT code AS id, code, catalog, name_vi, name_en, group_code, parent_code, color,
               replaced_by, NULL::geometry(Geometry, 4326) AS geom
          FROM cadastre.land_use_type
    """)
    op.execute("""
        CREATE VIEW publish.admin_units AS
        SELECT id, code, level, name, parent_code, valid_from, valid_to,
               geom_is_extent, geom
          FROM admin.admin_unit
    """)
    op.execute("""
        CREATE VIEW publish.districts AS
        SELECT s.district_code, d.name AS district_name, d.parent_code AS province_code,
               p.name AS province_name, c.epsg AS tm3_epsg, s.parcel_count,
               s.min_lon, s.min_lat, s.max_lon, s.max_lat
          FROM cadastre.district_summary s
          JOIN admin.admin_unit d ON d.level = 'district' AND d.code = s.district_code
                                 AND d.valid_to = DATE '2025-06-30'
          JOIN admin.admin_unit p ON p.level = 'province' AND p.code = d.parent_code
                                 AND p.valid_to = DATE '2025-06-30'
          LEFT JOIN admin.province_crs c ON c.province_code = d.parent_code
         WHERE s.parcel_count > 0
    """)
    op.execute("""
        DO $$
        BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lis_public') THEN
            CREATE ROLE lis_public NOLOGIN;
          END IF;
        END $$
    """)
    op.execute("GRANT USAGE ON SCHEMA publish TO lis_public")
    op.execute("GRANT SELECT ON ALL TABLES IN SCHEMA publish TO lis_public")
    # /health reads the schema revision as the public role.
    op.execute("GRANT SELECT ON public.alembic_version TO lis_public")
    # (This revision used to GRANT lis_public TO CURRENT_USER for the SET ROLE of a pool
    # logging in as the migrating user; the public pool now logs in as lis_public itself,
    # landplatform.roles, and the owner that migrates is no member of it.)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS publish.districts, publish.admin_units, "
               "publish.land_use_types, publish.parcels")
    op.execute("REVOKE ALL ON SCHEMA publish FROM lis_public")
