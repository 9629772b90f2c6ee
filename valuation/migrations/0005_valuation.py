"""Valuation: provincial land price tables, adjustment rules, valuation runs, publication.

A price table (bảng giá đất, Land Law 2024 / Decree 71/2024) is identified by its natural key
``table_code`` (given by the delivery's sidecar). Its content is data, never code:
road segments (đoạn đường) with their rates by land type and position (vị trí 1-5), the
rural matrix of area class (khu vực 1-6) x position, the communes' area classes, value zones
with their standard parcel (vùng giá trị, thửa đất chuẩn), the coefficients K (hệ số điều
chỉnh giá đất) and the adjustment rules (position bands, depth layers, two frontages, height
difference) as jsonb parameters. Amounts are exact: numeric, whole VND.

Valuation runs are versioned: every run gets a new ``run_id`` and records the table version
and content hash it used and a hash of all its inputs, so a run can be reproduced and a
second ``lis up`` can see that nothing changed. ``parcel_value`` (one row per land-use part)
and ``parcel_total`` (one row per parcel) carry ``district_code`` in their primary keys like
the cadastre's tables (partitioning / Citus by district).

The API reads only ``publish.*`` as ``lis_public``: ``land_prices`` and ``parcel_values`` are
the published layers; the ``valuation_*`` views expose the inputs the ``parcel-valuation``
process needs (price tables are public instruments; cadastral land-use parts carry no owner
data), so the process computes with the very SQL the engine runs, read-only.

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql as pg

revision = "0005"
down_revision = "0003"
branch_labels = ("valuation",)
depends_on = None

NOW = sa.text("now()")
RULE_KINDS = ("position_band", "depth_layer", "two_frontages", "height_difference")

# The valuation land types (loại đất in price tables) and what falls back to what: beyond
# the reach of priced roads, urban residential land takes the rural residential matrix.
LAND_TYPES = (
    # code, name_vi, name_en, category, area_fallback
    ("ONT", "Đất ở tại nông thôn", "Rural residential land", "residential", None),
    ("ODT", "Đất ở tại đô thị", "Urban residential land", "residential", "ONT"),
    ("TMD", "Đất thương mại, dịch vụ", "Commercial and service land", "commercial", None),
    ("SKC", "Đất cơ sở sản xuất phi nông nghiệp", "Non-agricultural production land",
     "production", None),
    ("LUC", "Đất trồng lúa", "Rice land", "agricultural", None),
    ("HNK", "Đất trồng cây hằng năm khác", "Other annual cropland", "agricultural", None),
    ("CLN", "Đất trồng cây lâu năm", "Perennial cropland", "agricultural", None),
    ("NTS", "Đất nuôi trồng thủy sản", "Aquaculture land", "agricultural", None),
    ("RSX", "Đất rừng sản xuất", "Production forest land", "agricultural", None),
)
# cadastre.land_use_type code -> valuation land type (2018 codes for completeness: the
# parcel loader already stores their 2024 replacement).
LAND_TYPE_MAP = (
    ("ODT", "ODT"), ("ONT", "ONT"), ("TMD", "TMD"), ("SKC", "SKC"),
    ("LUC", "LUC"), ("LUK", "LUC"), ("LUN", "LUC"),
    ("HNK", "HNK"), ("BHK", "HNK"), ("NHK", "HNK"),
    ("CLN", "CLN"), ("NTS", "NTS"), ("RSX", "RSX"),
)


def _geom(kind: str) -> Geometry:
    return Geometry(kind, srid=4326, spatial_index=False)


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS valuation")

    # --- land types -------------------------------------------------------------------
    op.create_table(
        "land_type",
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("name_vi", sa.Text, nullable=False),
        sa.Column("name_en", sa.Text),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("area_fallback", sa.Text, sa.ForeignKey("valuation.land_type.code"),
                  comment="land type whose area-class rates apply beyond priced roads"),
        sa.CheckConstraint("category IN ('residential', 'commercial', 'production', "
                           "'agricultural')", name="ck_category"),
        schema="valuation",
    )
    op.create_table(
        "land_type_map",
        sa.Column("land_use_code", sa.Text, sa.ForeignKey("cadastre.land_use_type.code"),
                  primary_key=True),
        sa.Column("land_type", sa.Text, sa.ForeignKey("valuation.land_type.code"),
                  nullable=False),
        schema="valuation",
    )
    lt = sa.table("land_type", sa.column("code"), sa.column("name_vi"), sa.column("name_en"),
                  sa.column("category"), sa.column("area_fallback"), schema="valuation")
    op.bulk_insert(lt, [dict(zip(("code", "name_vi", "name_en", "category", "area_fallback"),
                                 row, strict=True)) for row in LAND_TYPES])
    values = ", ".join(f"('{a}', '{b}')" for a, b in LAND_TYPE_MAP)
    op.execute(f"""
        INSERT INTO valuation.land_type_map (land_use_code, land_type)
        SELECT m.code, m.land_type FROM (VALUES {values}) AS m(code, land_type)
         WHERE EXISTS (SELECT 1 FROM cadastre.land_use_type t WHERE t.code = m.code)
    """)

    # --- price tables ---------------------------------------------------------------------
    op.create_table(
        "price_table",
        sa.Column("table_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("table_code", sa.Text, nullable=False, unique=True,
                  comment="natural key given by the delivery, e.g. HN-2026"),
        sa.Column("province_code", sa.Text, nullable=False,
                  comment="issuing province (GSO code)"),
        sa.Column("instrument", sa.Text, nullable=False,
                  comment="issuing decision, e.g. Quyết định 30/2024/QĐ-UBND"),
        sa.Column("title", sa.Text),
        sa.Column("effective_from", sa.Date, nullable=False),
        sa.Column("effective_to", sa.Date),
        sa.Column("version", sa.Integer, nullable=False, server_default="1",
                  comment="incremented whenever a load changes the table's content"),
        sa.Column("content_hash", sa.Text,
                  comment="md5 of the table's content (rates, segments, classes, zones, rules)"),
        sa.Column("load_run_id", sa.BigInteger,
                  comment="the load run that last changed the table"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.CheckConstraint("effective_to IS NULL OR effective_to >= effective_from",
                           name="ck_effective"),
        schema="valuation",
    )
    op.execute("CREATE INDEX price_table_province_idx ON valuation.price_table "
               "(province_code, effective_from)")
    op.create_table(
        "price_segment",
        sa.Column("segment_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("table_id", sa.BigInteger,
                  sa.ForeignKey("valuation.price_table.table_id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("segment_key", sa.Text, nullable=False,
                  comment="normalised road|from|to: how rows and geometries are matched"),
        sa.Column("road_name", sa.Text, nullable=False),
        sa.Column("from_desc", sa.Text),
        sa.Column("to_desc", sa.Text),
        sa.Column("road_class", sa.Text, comment="loại đường, e.g. 1a, 2b"),
        sa.Column("district_code", sa.Text),
        sa.Column("source_row", sa.Text, comment="sheet!row of the first sheet pricing it"),
        sa.Column("geom", _geom("MULTILINESTRING")),
        sa.UniqueConstraint("table_id", "segment_key", name="price_segment_natural_key"),
        schema="valuation",
    )
    op.execute("CREATE INDEX price_segment_geom_idx ON valuation.price_segment USING gist (geom)")
    op.execute("CREATE INDEX price_segment_district_idx ON valuation.price_segment "
               "(district_code)")
    op.create_table(
        "price_rate",
        sa.Column("rate_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("table_id", sa.BigInteger,
                  sa.ForeignKey("valuation.price_table.table_id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("land_type", sa.Text, sa.ForeignKey("valuation.land_type.code"),
                  nullable=False),
        sa.Column("segment_id", sa.BigInteger,
                  sa.ForeignKey("valuation.price_segment.segment_id", ondelete="CASCADE")),
        sa.Column("area_class", sa.SmallInteger),
        sa.Column("position", sa.SmallInteger, nullable=False),
        sa.Column("vnd_per_m2", sa.Numeric(15, 0), nullable=False),
        sa.CheckConstraint("vnd_per_m2 > 0", name="ck_price_positive"),
        sa.CheckConstraint("position BETWEEN 1 AND 5", name="ck_position"),
        sa.CheckConstraint("area_class BETWEEN 1 AND 6", name="ck_area_class"),
        sa.CheckConstraint("(segment_id IS NULL) <> (area_class IS NULL)",
                           name="ck_segment_or_area"),
        schema="valuation",
    )
    op.execute("CREATE UNIQUE INDEX price_rate_natural_key ON valuation.price_rate "
               "(table_id, land_type, coalesce(segment_id, 0), coalesce(area_class, 0), "
               "position)")
    op.execute("CREATE INDEX price_rate_segment_idx ON valuation.price_rate (segment_id)")
    op.create_table(
        "price_area_class",
        sa.Column("table_id", sa.BigInteger,
                  sa.ForeignKey("valuation.price_table.table_id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("commune_code", sa.Text, nullable=False),
        sa.Column("area_class", sa.SmallInteger, nullable=False),
        sa.PrimaryKeyConstraint("table_id", "commune_code"),
        sa.CheckConstraint("area_class BETWEEN 1 AND 6", name="ck_area_class"),
        schema="valuation",
    )
    op.create_table(
        "price_zone",
        sa.Column("zone_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("table_id", sa.BigInteger,
                  sa.ForeignKey("valuation.price_table.table_id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("zone_code", sa.Text, nullable=False),
        sa.Column("land_type", sa.Text, sa.ForeignKey("valuation.land_type.code"),
                  nullable=False),
        sa.Column("vnd_per_m2", sa.Numeric(15, 0), nullable=False,
                  comment="price of the zone's standard parcel"),
        sa.Column("standard_parcel_ref", sa.Text,
                  comment="thửa đất chuẩn: commune.sheet.parcel"),
        sa.Column("district_code", sa.Text),
        sa.Column("geom", _geom("MULTIPOLYGON"), nullable=False),
        sa.UniqueConstraint("table_id", "zone_code", name="price_zone_natural_key"),
        sa.CheckConstraint("vnd_per_m2 > 0", name="ck_price_positive"),
        schema="valuation",
    )
    op.execute("CREATE INDEX price_zone_geom_idx ON valuation.price_zone USING gist (geom)")
    op.create_table(
        "price_coefficient",
        sa.Column("coefficient_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("province_code", sa.Text, nullable=False),
        sa.Column("land_type", sa.Text, sa.ForeignKey("valuation.land_type.code"),
                  nullable=False),
        sa.Column("district_code", sa.Text, comment="NULL: the whole province"),
        sa.Column("k", sa.Numeric(8, 4), nullable=False),
        sa.Column("instrument", sa.Text),
        sa.CheckConstraint("k > 0", name="ck_k_positive"),
        schema="valuation",
    )
    op.execute("CREATE UNIQUE INDEX price_coefficient_natural_key ON valuation.price_coefficient "
               "(year, province_code, land_type, coalesce(district_code, ''))")
    kinds = ", ".join(f"'{k}'" for k in RULE_KINDS)
    op.create_table(
        "adjustment_rule",
        sa.Column("table_id", sa.BigInteger,
                  sa.ForeignKey("valuation.price_table.table_id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("parameters", pg.JSONB, nullable=False),
        sa.PrimaryKeyConstraint("table_id", "kind"),
        sa.CheckConstraint(f"kind IN ({kinds})", name="ck_kind"),
        schema="valuation",
    )
    # Facts about a parcel's site a valuer records (no owner data): the height difference
    # to the road for the height rule.
    op.create_table(
        "parcel_site",
        sa.Column("district_code", sa.Text, nullable=False),
        sa.Column("parcel_uid", sa.BigInteger, nullable=False),
        sa.Column("height_diff_m", sa.Numeric(6, 2),
                  comment="height difference between the parcel and the road, m"),
        sa.Column("note", sa.Text),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("district_code", "parcel_uid"),
        sa.ForeignKeyConstraint(["district_code", "parcel_uid"],
                                ["cadastre.parcel.district_code", "cadastre.parcel.uid"],
                                ondelete="CASCADE"),
        schema="valuation",
    )

    # --- valuation runs ---------------------------------------------------------------
    op.create_table(
        "valuation_run",
        sa.Column("run_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("district_code", sa.Text, nullable=False),
        sa.Column("on_date", sa.Date, nullable=False, comment="the table date"),
        sa.Column("table_id", sa.BigInteger, sa.ForeignKey("valuation.price_table.table_id")),
        sa.Column("table_code", sa.Text, nullable=False),
        sa.Column("table_version", sa.Integer, nullable=False),
        sa.Column("table_hash", sa.Text, nullable=False),
        sa.Column("engine_version", sa.Text, nullable=False),
        sa.Column("inputs_hash", sa.Text, nullable=False,
                  comment="md5 of table content, parcels, site facts, K and engine version"),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("is_latest", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("parameters", pg.JSONB, comment="rules and coefficients as applied"),
        sa.Column("parcels_total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("parcels_valued", sa.Integer, nullable=False, server_default="0"),
        sa.Column("parts_total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("parts_valued", sa.Integer, nullable=False, server_default="0"),
        sa.Column("total_value", sa.Numeric(22, 0), nullable=False, server_default="0"),
        sa.Column("unpriced", pg.JSONB, comment="reason -> number of land-use parts"),
        sa.Column("run_by", sa.Text),
        sa.CheckConstraint("status IN ('running', 'finished', 'failed')", name="ck_status"),
        schema="valuation",
    )
    op.execute("CREATE UNIQUE INDEX valuation_run_latest_uq ON valuation.valuation_run "
               "(district_code) WHERE is_latest")
    op.execute("CREATE INDEX valuation_run_district_idx ON valuation.valuation_run "
               "(district_code, run_id)")
    op.create_table(
        "parcel_value",
        sa.Column("district_code", sa.Text, nullable=False),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.Column("parcel_uid", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.SmallInteger, nullable=False),
        sa.Column("land_use_code", sa.Text, nullable=False),
        sa.Column("land_type", sa.Text, comment="valuation land type of the rate applied"),
        sa.Column("basis", sa.Text, comment="segment | area | zone; NULL: not priced"),
        sa.Column("segment_id", sa.BigInteger),
        sa.Column("position", sa.SmallInteger),
        sa.Column("area_class", sa.SmallInteger),
        sa.Column("zone_id", sa.BigInteger),
        sa.Column("distance_m", sa.Numeric(10, 2)),
        sa.Column("unit_price", sa.Numeric(15, 0), comment="the table's rate, VND/m²"),
        sa.Column("area_m2", sa.Numeric(14, 1)),
        sa.Column("factor", sa.Numeric, comment="product of the adjustments applied"),
        sa.Column("adjustments", pg.JSONB),
        sa.Column("value", sa.Numeric(18, 0)),
        sa.Column("explanation", pg.JSONB, nullable=False),
        sa.PrimaryKeyConstraint("district_code", "run_id", "parcel_uid", "seq"),
        sa.ForeignKeyConstraint(["run_id"], ["valuation.valuation_run.run_id"],
                                ondelete="CASCADE"),
        sa.CheckConstraint("basis IN ('segment', 'area', 'zone')", name="ck_basis"),
        schema="valuation",
    )
    op.execute("CREATE INDEX parcel_value_run_idx ON valuation.parcel_value (run_id)")
    op.create_table(
        "parcel_total",
        sa.Column("district_code", sa.Text, nullable=False),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.Column("parcel_uid", sa.BigInteger, nullable=False),
        sa.Column("land_type", sa.Text, comment="valuation land type of the primary part"),
        sa.Column("basis", sa.Text),
        sa.Column("road_name", sa.Text),
        sa.Column("position", sa.SmallInteger),
        sa.Column("area_class", sa.SmallInteger),
        sa.Column("unit_price", sa.Numeric(15, 0),
                  comment="the table's rate for the primary part, VND/m²"),
        sa.Column("value", sa.Numeric(18, 0), comment="sum over the valued parts"),
        sa.Column("parts_total", sa.SmallInteger, nullable=False),
        sa.Column("parts_valued", sa.SmallInteger, nullable=False),
        sa.Column("explanation", pg.JSONB, nullable=False),
        sa.PrimaryKeyConstraint("district_code", "run_id", "parcel_uid"),
        sa.ForeignKeyConstraint(["run_id"], ["valuation.valuation_run.run_id"],
                                ondelete="CASCADE"),
        schema="valuation",
    )
    op.execute("CREATE INDEX parcel_total_run_idx ON valuation.parcel_total (run_id, parcel_uid)")

    _publish_views()


def _publish_views() -> None:
    # Inputs of the valuation SQL, readable by lis_public (see the module docstring).
    op.execute("""
        CREATE VIEW publish.valuation_land_types AS
        SELECT m.land_use_code, m.land_type, t.name_vi, t.category, t.area_fallback
          FROM valuation.land_type_map m JOIN valuation.land_type t ON t.code = m.land_type
    """)
    op.execute("""
        CREATE VIEW publish.valuation_tables AS
        SELECT table_id, table_code, province_code, instrument, title, effective_from,
               effective_to, version, content_hash
          FROM valuation.price_table
    """)
    op.execute("""
        CREATE VIEW publish.valuation_segments AS
        SELECT segment_id, table_id, segment_key, road_name, from_desc, to_desc, road_class,
               district_code, geom
          FROM valuation.price_segment
    """)
    op.execute("""
        CREATE VIEW publish.valuation_rates AS
        SELECT table_id, land_type, segment_id, area_class, position, vnd_per_m2
          FROM valuation.price_rate
    """)
    op.execute("""
        CREATE VIEW publish.valuation_area_classes AS
        SELECT table_id, commune_code, area_class FROM valuation.price_area_class
    """)
    op.execute("""
        CREATE VIEW publish.valuation_zones AS
        SELECT zone_id, table_id, zone_code, land_type, vnd_per_m2, standard_parcel_ref,
               district_code, geom
          FROM valuation.price_zone
    """)
    op.execute("""
        CREATE VIEW publish.valuation_rules AS
        SELECT table_id, kind, parameters FROM valuation.adjustment_rule
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
        CREATE VIEW publish.valuation_parcel_parts AS
        SELECT u.district_code, u.parcel_uid, u.seq, u.code AS land_use_code, u.area_m2,
               u.is_primary
          FROM cadastre.parcel_land_use u
          JOIN cadastre.parcel p ON p.district_code = u.district_code AND p.uid = u.parcel_uid
         WHERE p.status = 'current'
    """)
    # What a valuer wants on a map: each priced road segment once per land type, with its
    # position prices side by side (vt1..vt5), so a map styles by vt1 and filters by
    # land_type (ODT residential, TMD commercial, ...) and table_code.
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
    # The latest finished run per district, one row per current parcel; no owner data.
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
    # The latest run per district: what the publisher lists at start (small, no scan).
    op.execute("""
        CREATE VIEW publish.valuation_runs AS
        SELECT run_id, district_code, on_date, table_code, table_version, finished_at,
               parcels_total, parcels_valued, parts_total, parts_valued, total_value
          FROM valuation.valuation_run WHERE is_latest
    """)
    views = ("land_prices", "parcel_values", "valuation_runs", "valuation_land_types",
             "valuation_tables",
             "valuation_segments", "valuation_rates", "valuation_area_classes",
             "valuation_zones", "valuation_rules", "valuation_coefficients",
             "valuation_sites", "valuation_parcel_parts")
    op.execute(f"GRANT SELECT ON {', '.join('publish.' + v for v in views)} TO lis_public")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS publish.valuation_runs, publish.parcel_values, "
               "publish.land_prices, "
               "publish.valuation_parcel_parts, publish.valuation_sites, "
               "publish.valuation_coefficients, publish.valuation_rules, "
               "publish.valuation_zones, publish.valuation_area_classes, "
               "publish.valuation_rates, publish.valuation_segments, "
               "publish.valuation_tables, publish.valuation_land_types")
    op.execute("DROP SCHEMA IF EXISTS valuation CASCADE")
