"""Price sheets as provinces write them: rows qualified by section headings, positions by
alley width, urban land priced only by urban rows, K by commune and position.

- ``price_segment`` rows gain what a heading above them says: the commune (ward) they are
  listed under (a 2025 commune in a table keyed by the new units, or a pre-2025 one), and
  their kind: ``road`` (a named road or segment, drawn by a geometry), ``remaining`` ("các
  đường còn lại": every other road of the commune) or ``cross_section`` (unnamed roads of
  the commune by cross-section width, "mặt cắt từ 15 m đến dưới 25 m": ``width_min_m``
  inclusive, ``width_max_m`` exclusive); ``section`` keeps the heading as written and
  ``segment_text`` the one-column segment ("Từ X đến Y") as written.
- ``parcel_site.alley_width_m``: the width of the alley (ngõ, kiệt, hẻm) a parcel is reached
  by, as the land office records it; positions 2-4 are set by it (rule ``position_width``).
- ODT no longer falls back to the rural residential matrix (``area_fallback`` ODT -> ONT):
  urban land is priced by the urban rows or not at all, and says why (``reason_code``).
- ``price_coefficient`` K may name a commune and a position, besides year, land type and
  district.

Revision ID: 0019
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0005"
branch_labels = None
depends_on = None

RULE_KINDS = ("position_band", "depth_layer", "two_frontages", "height_difference",
              "position_width")
OLD_RULE_KINDS = RULE_KINDS[:-1]


def _kinds(kinds: tuple[str, ...]) -> str:
    return ", ".join(f"'{k}'" for k in kinds)


def upgrade() -> None:
    seg = "valuation.price_segment"
    op.add_column("price_segment", sa.Column(
        "kind", sa.Text, nullable=False, server_default="road",
        comment="road | remaining (các đường còn lại) | cross_section (by mặt cắt)"),
        schema="valuation")
    op.add_column("price_segment", sa.Column(
        "commune_code", sa.Text, comment="commune/ward of the heading the row is under"),
        schema="valuation")
    op.add_column("price_segment", sa.Column("width_min_m", sa.Numeric(6, 2)),
                  schema="valuation")
    op.add_column("price_segment", sa.Column("width_max_m", sa.Numeric(6, 2)),
                  schema="valuation")
    op.add_column("price_segment", sa.Column("section", sa.Text,
                                             comment="the heading row above, as written"),
                  schema="valuation")
    op.add_column("price_segment", sa.Column("segment_text", sa.Text,
                                             comment="the one-column segment as written"),
                  schema="valuation")
    op.execute(f"ALTER TABLE {seg} ADD CONSTRAINT ck_segment_kind "
               "CHECK (kind IN ('road', 'remaining', 'cross_section'))")
    op.execute(f"ALTER TABLE {seg} ADD CONSTRAINT ck_segment_width "
               "CHECK (width_max_m IS NULL OR width_min_m IS NULL "
               "OR width_max_m > width_min_m)")
    op.execute(f"CREATE INDEX price_segment_commune_idx ON {seg} (table_id, commune_code) "
               "WHERE kind <> 'road'")

    op.add_column("parcel_site", sa.Column(
        "alley_width_m", sa.Numeric(5, 2),
        comment="width of the alley (ngõ/kiệt/hẻm) the parcel is reached by, m"),
        schema="valuation")
    op.execute("ALTER TABLE valuation.parcel_site ADD CONSTRAINT ck_alley_width "
               "CHECK (alley_width_m IS NULL OR alley_width_m > 0)")
    op.execute("UPDATE valuation.land_type SET area_fallback = NULL WHERE code = 'ODT'")

    op.add_column("price_coefficient", sa.Column("commune_code", sa.Text,
                                                 comment="NULL: the district or province"),
                  schema="valuation")
    op.add_column("price_coefficient", sa.Column("position", sa.SmallInteger,
                                                 comment="NULL: every position"),
                  schema="valuation")
    op.execute("DROP INDEX valuation.price_coefficient_natural_key")
    op.execute("CREATE UNIQUE INDEX price_coefficient_natural_key ON valuation.price_coefficient "
               "(year, province_code, land_type, coalesce(district_code, ''), "
               "coalesce(commune_code, ''), coalesce(position, 0))")

    op.execute("ALTER TABLE valuation.adjustment_rule DROP CONSTRAINT ck_kind")
    op.execute("ALTER TABLE valuation.adjustment_rule ADD CONSTRAINT ck_kind "
               f"CHECK (kind IN ({_kinds(RULE_KINDS)}))")
    for table in ("parcel_value", "parcel_total"):
        op.add_column(table, sa.Column("reason_code", sa.Text,
                                       comment="why a part has no price (NULL: priced)"),
                      schema="valuation")
    _views()


def _views() -> None:
    op.execute("""
        CREATE OR REPLACE VIEW publish.valuation_segments AS
        SELECT segment_id, table_id, segment_key, road_name, from_desc, to_desc, road_class,
               district_code, geom, kind, commune_code, width_min_m, width_max_m
          FROM valuation.price_segment
    """)
    op.execute("""
        CREATE OR REPLACE VIEW publish.valuation_coefficients AS
        SELECT year, province_code, land_type, district_code, k, commune_code, position
          FROM valuation.price_coefficient
    """)
    op.execute("""
        CREATE OR REPLACE VIEW publish.valuation_sites AS
        SELECT district_code, parcel_uid, height_diff_m, alley_width_m
          FROM valuation.parcel_site
    """)
    # Which communes are urban (wards, towns): urban land there takes urban rows only.
    op.execute("""
        CREATE VIEW publish.valuation_communes AS
        SELECT code AS commune_code,
               bool_or(name LIKE 'Phường %' OR name LIKE 'Thị trấn %') AS urban
          FROM admin.admin_unit WHERE level = 'commune' GROUP BY code
    """)
    op.execute("""
        CREATE OR REPLACE VIEW publish.land_prices AS
        SELECT t.table_code || '.' || s.segment_id || '.' || r.land_type AS id,
               t.table_code, t.province_code, t.instrument, t.effective_from, t.effective_to,
               s.segment_id, s.district_code, s.road_name, s.from_desc, s.to_desc,
               s.road_class, r.land_type, lt.name_vi AS land_type_name,
               max(r.vnd_per_m2) FILTER (WHERE r.position = 1) AS vt1,
               max(r.vnd_per_m2) FILTER (WHERE r.position = 2) AS vt2,
               max(r.vnd_per_m2) FILTER (WHERE r.position = 3) AS vt3,
               max(r.vnd_per_m2) FILTER (WHERE r.position = 4) AS vt4,
               max(r.vnd_per_m2) FILTER (WHERE r.position = 5) AS vt5,
               s.geom, s.kind, s.commune_code, s.width_min_m, s.width_max_m, s.section
          FROM valuation.price_segment s
          JOIN valuation.price_table t ON t.table_id = s.table_id
          JOIN valuation.price_rate r ON r.segment_id = s.segment_id
          JOIN valuation.land_type lt ON lt.code = r.land_type
         GROUP BY t.table_id, s.segment_id, r.land_type, lt.name_vi
    """)
    op.execute("""
        CREATE OR REPLACE VIEW publish.parcel_values AS
        SELECT p.id, p.province_code, p.district_code, p.commune_code, p.sheet_no,
               p.parcel_no, p.parcel_ref, p.land_use, p.area_m2,
               r.run_id, r.table_code, r.on_date AS valued_on,
               v.land_type, v.basis, v.road_name, v.position, v.area_class,
               v.unit_price, v.value, v.parts_valued = v.parts_total AS fully_valued,
               v.explanation::text AS explanation, p.geom, v.reason_code AS unpriced_reason,
               p.current_commune_code
          FROM valuation.valuation_run r
          JOIN valuation.parcel_total v ON v.run_id = r.run_id
                                       AND v.district_code = r.district_code
          JOIN publish.parcels p ON p.district_code = v.district_code AND p.id = v.parcel_uid
         WHERE r.is_latest
    """)
    op.execute("GRANT SELECT ON publish.valuation_communes TO lis_public")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS publish.valuation_communes")
    op.execute("DROP VIEW publish.parcel_values")
    op.execute("DROP VIEW publish.land_prices")
    op.execute("DROP VIEW publish.valuation_segments")
    op.execute("DROP VIEW publish.valuation_coefficients")
    op.execute("DROP VIEW publish.valuation_sites")
    for table in ("parcel_value", "parcel_total"):
        op.drop_column(table, "reason_code", schema="valuation")
    op.execute("DELETE FROM valuation.adjustment_rule WHERE kind = 'position_width'")
    op.execute("ALTER TABLE valuation.adjustment_rule DROP CONSTRAINT ck_kind")
    op.execute("ALTER TABLE valuation.adjustment_rule ADD CONSTRAINT ck_kind "
               f"CHECK (kind IN ({_kinds(OLD_RULE_KINDS)}))")
    op.execute("DROP INDEX valuation.price_coefficient_natural_key")
    op.execute("DELETE FROM valuation.price_coefficient "
               "WHERE commune_code IS NOT NULL OR position IS NOT NULL")
    op.drop_column("price_coefficient", "position", schema="valuation")
    op.drop_column("price_coefficient", "commune_code", schema="valuation")
    op.execute("CREATE UNIQUE INDEX price_coefficient_natural_key ON valuation.price_coefficient "
               "(year, province_code, land_type, coalesce(district_code, ''))")
    op.execute("UPDATE valuation.land_type SET area_fallback = 'ONT' WHERE code = 'ODT'")
    op.drop_column("parcel_site", "alley_width_m", schema="valuation")
    op.execute("DELETE FROM valuation.price_segment WHERE kind <> 'road'")
    for col in ("segment_text", "section", "width_max_m", "width_min_m", "commune_code",
                "kind"):
        op.drop_column("price_segment", col, schema="valuation")
    # the views as revision 0005 made them
    op.execute("""
        CREATE VIEW publish.valuation_segments AS
        SELECT segment_id, table_id, segment_key, road_name, from_desc, to_desc, road_class,
               district_code, geom
          FROM valuation.price_segment
    """)
    op.execute("""
        CREATE VIEW publish.valuation_coefficients AS
        SELECT year, province_code, land_type, district_code, k FROM valuation.price_coefficient
    """)
    op.execute("""
        CREATE VIEW publish.valuation_sites AS
        SELECT district_code, parcel_uid, height_diff_m FROM valuation.parcel_site
    """)
    op.execute("""
        CREATE VIEW publish.land_prices AS
        SELECT t.table_code || '.' || s.segment_id || '.' || r.land_type AS id,
               t.table_code, t.province_code, t.instrument, t.effective_from, t.effective_to,
               s.segment_id, s.district_code, s.road_name, s.from_desc, s.to_desc,
               s.road_class, r.land_type, lt.name_vi AS land_type_name,
               max(r.vnd_per_m2) FILTER (WHERE r.position = 1) AS vt1,
               max(r.vnd_per_m2) FILTER (WHERE r.position = 2) AS vt2,
               max(r.vnd_per_m2) FILTER (WHERE r.position = 3) AS vt3,
               max(r.vnd_per_m2) FILTER (WHERE r.position = 4) AS vt4,
               max(r.vnd_per_m2) FILTER (WHERE r.position = 5) AS vt5,
               s.geom
          FROM valuation.price_segment s
          JOIN valuation.price_table t ON t.table_id = s.table_id
          JOIN valuation.price_rate r ON r.segment_id = s.segment_id
          JOIN valuation.land_type lt ON lt.code = r.land_type
         GROUP BY t.table_id, s.segment_id, r.land_type, lt.name_vi
    """)
    op.execute("""
        CREATE VIEW publish.parcel_values AS
        SELECT p.id, p.province_code, p.district_code, p.commune_code, p.sheet_no,
               p.parcel_no, p.parcel_ref, p.land_use, p.area_m2,
               r.run_id, r.table_code, r.on_date AS valued_on,
               v.land_type, v.basis, v.road_name, v.position, v.area_class,
               v.unit_price, v.value, v.parts_valued = v.parts_total AS fully_valued,
               v.explanation::text AS explanation, p.geom
          FROM valuation.valuation_run r
          JOIN valuation.parcel_total v ON v.run_id = r.run_id
                                       AND v.district_code = r.district_code
          JOIN publish.parcels p ON p.district_code = v.district_code AND p.id = v.parcel_uid
         WHERE r.is_latest
    """)
    op.execute("GRANT SELECT ON publish.valuation_segments, publish.valuation_coefficients, "
               "publish.valuation_sites, publish.land_prices, publish.parcel_values "
               "TO lis_public")
