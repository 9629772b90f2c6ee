"""Reference facts: administrative units (pre-2025 and 2025), the 2025 crosswalk,
district extents, per-province TM-3 CRS, and the land-use code list.

The CSVs ship in ``landplatform/reference`` (sources in its SOURCES.md). They are loaded
with COPY into temporary tables and shaped by SQL, so the migration stays fast.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from pathlib import Path

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

REF = Path(__file__).resolve().parents[2] / "reference"
PRE2025_END = "2025-06-30"
REFORM_DATE = "2025-07-01"


def _copy_csv(table: str, columns: str, filename: str) -> None:
    """COPY a reference CSV (header row) into a temp table through psycopg's COPY."""
    op.execute(f"CREATE TEMP TABLE {table} ({columns}) ON COMMIT DROP")
    raw = op.get_bind().connection.driver_connection
    with raw.cursor() as cur, cur.copy(
        f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)"
    ) as copy, open(REF / filename, "rb") as fh:
        while chunk := fh.read(1 << 16):
            copy.write(chunk)


def upgrade() -> None:
    _copy_csv("ref_pre", "province_code text, province_name text, district_code text, "
              "district_name text, commune_code text, commune_name text",
              "admin_units_pre2025.csv")
    _copy_csv("ref_xwalk", "old_commune_code text, new_province_code text, "
              "new_province_name text, new_commune_code text, new_commune_name text, "
              "overlap text", "admin_units_2025_crosswalk.csv")
    _copy_csv("ref_extent", "province_code text, district_code text, district_name text, "
              "min_lon float8, min_lat float8, max_lon float8, max_lat float8",
              "district_extents_01_48.csv")
    _copy_csv("ref_crs", "province_code text, province_name text, central_meridian numeric, "
              "epsg int, source text", "province_tm3.csv")
    _copy_csv("ref_luse", "code text, catalog text, name_vi text, name_en text, "
              "group_code text, parent_code text, color text, replaced_by text, source text",
              "land_use_types.csv")

    # Pre-2025 units: valid until the reform; their start is not in the source (NULL).
    op.execute(f"""
        INSERT INTO admin.admin_unit (code, level, name, parent_code, valid_to)
        SELECT DISTINCT province_code, 'province', province_name, NULL, '{PRE2025_END}'::date
          FROM ref_pre
        UNION ALL
        SELECT DISTINCT district_code, 'district', district_name, province_code,
               '{PRE2025_END}'::date
          FROM ref_pre
        UNION ALL
        SELECT commune_code, 'commune', commune_name, district_code, '{PRE2025_END}'::date
          FROM ref_pre
    """)
    op.execute("""
        UPDATE admin.admin_unit u
           SET geom = ST_Multi(ST_MakeEnvelope(e.min_lon, e.min_lat, e.max_lon, e.max_lat, 4326)),
               geom_is_extent = true
          FROM ref_extent e
         WHERE u.level = 'district' AND u.code = e.district_code AND u.valid_to IS NOT NULL
    """)
    # 2025 units: 34 provinces and 3,321 communes, no district level.
    op.execute(f"""
        INSERT INTO admin.admin_unit (code, level, name, parent_code, valid_from)
        SELECT DISTINCT new_province_code, 'province', new_province_name, NULL,
               '{REFORM_DATE}'::date
          FROM ref_xwalk
        UNION ALL
        SELECT DISTINCT new_commune_code, 'commune', new_commune_name, new_province_code,
               '{REFORM_DATE}'::date
          FROM ref_xwalk
    """)
    op.execute(f"""
        INSERT INTO admin.admin_unit_map
               (old_code, new_code, new_province_code, overlap, effective_date)
        SELECT old_commune_code, new_commune_code, new_province_code, overlap,
               '{REFORM_DATE}'::date
          FROM ref_xwalk
    """)
    op.execute("""
        INSERT INTO admin.province_crs (province_code, central_meridian, epsg, source)
        SELECT province_code, central_meridian, epsg, source FROM ref_crs
    """)
    # Replacements point at codes of the same list: insert current codes first.
    op.execute("""
        INSERT INTO cadastre.land_use_type
               (code, catalog, name_vi, name_en, group_code, parent_code, color, source)
        SELECT code, catalog, name_vi, name_en, group_code, nullif(parent_code, ''),
               nullif(color, ''), source
          FROM ref_luse
    """)
    op.execute("""
        UPDATE cadastre.land_use_type t SET replaced_by = r.replaced_by
          FROM ref_luse r
         WHERE t.code = r.code AND coalesce(r.replaced_by, '') <> ''
    """)


def downgrade() -> None:
    op.execute("TRUNCATE cadastre.land_use_type, admin.province_crs, admin.admin_unit_map, "
               "admin.admin_unit")
