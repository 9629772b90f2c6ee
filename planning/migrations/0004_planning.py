"""Planning: land-use plans and their zones (ô quy hoạch), and their publication views.

A plan is identified by its natural key ``plan_code`` (given by the delivery), so a
re-delivered plan updates in place. Zones carry ``district_code`` in their primary key like
the cadastre's tables, so they can be partitioned or distributed by district later; a
plan's zones all lie in the plan's district (the loader guarantees it), which is why the
natural key (plan_id, zone_code) needs no district column to stay unique per partition.

The API reads ``publish.planning_zones`` and ``publish.plans`` only, as ``lis_public``.
``planning.plan`` keeps its zone count and extent (maintained by the loader) so listing
plans and generating per-district collections never scans the zones.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0004"
down_revision = "0003"
branch_labels = ("planning",)
depends_on = None

PLAN_TYPES = ("land_use_period", "land_use_annual", "zoning_1_2000", "detailed_1_500")


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS planning")
    types = ", ".join(f"'{t}'" for t in PLAN_TYPES)
    op.create_table(
        "plan",
        sa.Column("plan_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("plan_code", sa.Text, nullable=False, unique=True,
                  comment="natural key given by the delivery, e.g. QHPK-001-2021-2030"),
        sa.Column("plan_type", sa.Text, nullable=False,
                  comment="land_use_period (quy hoạch sử dụng đất của kỳ), land_use_annual "
                          "(kế hoạch sử dụng đất hằng năm), zoning_1_2000, detailed_1_500"),
        sa.Column("admin_level", sa.Text, nullable=False),
        sa.Column("admin_code", sa.Text, nullable=False,
                  comment="the unit the plan is for: pre-2025 district, or 2025 unit"),
        sa.Column("district_code", sa.Text,
                  comment="pre-2025 district the plan covers (per-district publishing)"),
        sa.Column("period_from", sa.Integer),
        sa.Column("period_to", sa.Integer),
        sa.Column("scale", sa.Integer, comment="map scale denominator, e.g. 2000"),
        sa.Column("decision_no", sa.Text, comment="approving decision, e.g. 1234/QĐ-UBND"),
        sa.Column("decision_date", sa.Date),
        sa.Column("approved_by", sa.Text),
        sa.Column("title", sa.Text),
        sa.Column("source_srid", sa.Integer),
        sa.Column("load_run_id", sa.BigInteger,
                  comment="the load run that last changed the plan or its zones"),
        sa.Column("zone_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("min_lon", sa.Float), sa.Column("min_lat", sa.Float),
        sa.Column("max_lon", sa.Float), sa.Column("max_lat", sa.Float),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("now()")),
        sa.CheckConstraint(f"plan_type IN ({types})", name="ck_plan_type"),
        sa.CheckConstraint("admin_level IN ('province', 'district', 'commune')",
                           name="ck_admin_level"),
        sa.CheckConstraint("period_from IS NULL OR period_to IS NULL "
                           "OR period_from <= period_to", name="ck_period"),
        sa.CheckConstraint("scale IS NULL OR scale > 0", name="ck_scale"),
        schema="planning",
    )
    op.execute("CREATE INDEX plan_district_idx ON planning.plan (district_code)")
    op.create_table(
        "zone",
        sa.Column("zone_id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("district_code", sa.Text, nullable=False),
        sa.Column("plan_id", sa.BigInteger,
                  sa.ForeignKey("planning.plan.plan_id", ondelete="CASCADE"), nullable=False),
        sa.Column("zone_code", sa.Text, nullable=False),
        sa.Column("planned_use", sa.Text, sa.ForeignKey("cadastre.land_use_type.code"),
                  nullable=False),
        sa.Column("planned_use_source", sa.Text,
                  comment="code as delivered, e.g. a superseded 2018 code"),
        sa.Column("function", sa.Text, comment="chức năng"),
        sa.Column("area_m2", sa.Numeric(14, 1), comment="stated area"),
        sa.Column("computed_area_m2", sa.Numeric(14, 1),
                  comment="area of geom in the province's TM-3 at load time"),
        sa.Column("coverage_pct", sa.Numeric(5, 2), comment="mật độ xây dựng, %"),
        sa.Column("max_floors", sa.Integer, comment="tầng cao tối đa"),
        sa.Column("far", sa.Numeric(6, 2), comment="hệ số sử dụng đất (floor-area ratio)"),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False),
                  nullable=False),
        sa.PrimaryKeyConstraint("district_code", "zone_id"),
        sa.UniqueConstraint("plan_id", "zone_code", name="zone_natural_key"),
        sa.CheckConstraint("coverage_pct BETWEEN 0 AND 100", name="ck_coverage"),
        sa.CheckConstraint("max_floors >= 0", name="ck_floors"),
        sa.CheckConstraint("far >= 0", name="ck_far"),
        schema="planning",
    )
    op.execute("CREATE INDEX zone_geom_idx ON planning.zone USING gist (geom)")
    op.execute("CREATE INDEX zone_id_idx ON planning.zone (zone_id)")

    op.execute("""
        CREATE VIEW publish.planning_zones AS
        SELECT z.zone_id AS id, p.plan_code, p.plan_type, p.title AS plan_title,
               p.decision_no, p.decision_date, z.district_code, z.zone_code,
               z.planned_use, z.function, z.area_m2, z.coverage_pct, z.max_floors, z.far,
               z.geom
          FROM planning.zone z JOIN planning.plan p USING (plan_id)
    """)
    op.execute("""
        CREATE VIEW publish.plans AS
        SELECT p.plan_id AS id, p.plan_code, p.plan_type, p.admin_level, p.admin_code,
               p.district_code, p.period_from, p.period_to, p.scale, p.decision_no,
               p.decision_date, p.approved_by, p.title, p.zone_count,
               p.min_lon, p.min_lat, p.max_lon, p.max_lat
          FROM planning.plan p
    """)
    op.execute("GRANT SELECT ON publish.planning_zones, publish.plans TO lis_public")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS publish.plans, publish.planning_zones")
    op.execute("DROP SCHEMA IF EXISTS planning CASCADE")
