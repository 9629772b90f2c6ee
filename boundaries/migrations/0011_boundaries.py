"""Administrative boundaries are deliveries: every delivered (or derived) boundary of a
unit is a version, kept.

``admin.admin_unit.geom`` holds a unit's current boundary (``geom_is_extent = false``), or
the district's bounding box from the reference data until a boundary is loaded. This
revision adds its history: ``admin.unit_boundary`` has one row per boundary a unit has had,
numbered per unit, with the load run that delivered it, when it was valid, and whether it
was delivered or derived (a district's boundary as the union of its communes', when not
delivered). A re-delivery closes the current version (``valid_to``, the superseding run)
and adds the next; at most one version per unit is current. The extents the reference
data put in ``geom`` are not versions: they are facts of migration 0002, not boundaries.

Revision ID: 0011
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0011"
down_revision = "0003"
branch_labels = ("boundaries",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unit_boundary",
        sa.Column("unit_id", sa.Integer, sa.ForeignKey("admin.admin_unit.id"),
                  nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False),
                  nullable=False),
        sa.Column("load_run_id", sa.BigInteger, sa.ForeignKey("etl.load_run.run_id"),
                  nullable=False),
        sa.Column("superseded_by_run", sa.BigInteger, sa.ForeignKey("etl.load_run.run_id")),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("now()")),
        sa.Column("valid_to", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("unit_id", "version"),
        sa.CheckConstraint("source IN ('delivered', 'derived')", name="ck_source"),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="ck_validity"),
        schema="admin",
    )
    op.execute("CREATE UNIQUE INDEX unit_boundary_current_uq ON admin.unit_boundary "
               "(unit_id) WHERE valid_to IS NULL")


def downgrade() -> None:
    op.drop_table("unit_boundary", schema="admin")
