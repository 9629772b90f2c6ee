"""Core schema: administrative units, land-use codes, cadastre, restricted rights, load runs.

Schemas separate who may see what: ``admin`` and ``cadastre`` hold public facts,
``restricted`` holds personal data (parties, rights, certificates) that no public feed
reads, ``etl`` records every load, ``publish`` holds the views the API serves.

Large tables carry ``district_code`` in their primary key so they can later be
partitioned by district or distributed with Citus (district as distribution column).

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql as pg

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def _geom(kind: str) -> Geometry:
    # Indexes are created explicitly below so their names are ours, not geoalchemy2's.
    return Geometry(kind, srid=4326, spatial_index=False)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    for schema in ("admin", "cadastre", "restricted", "etl", "publish"):
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")

    # --- administrative units, versioned (the 2025 reform abolished districts) ---------
    op.create_table(
        "admin_unit",
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("parent_code", sa.Text),
        sa.Column("valid_from", sa.Date),
        sa.Column("valid_to", sa.Date),
        sa.Column("geom", _geom("MULTIPOLYGON")),
        sa.Column("geom_is_extent", sa.Boolean, nullable=False, server_default=sa.false(),
                  comment="true: geom is only a bounding box, not a boundary"),
        sa.CheckConstraint("level IN ('province', 'district', 'commune')", name="ck_level"),
        sa.CheckConstraint("valid_to IS NULL OR valid_from IS NULL OR valid_to >= valid_from",
                           name="ck_validity"),
        schema="admin",
    )
    op.execute("CREATE UNIQUE INDEX admin_unit_version_uq ON admin.admin_unit "
               "(level, code, coalesce(valid_from, '-infinity'::date))")
    op.execute("CREATE INDEX admin_unit_current_idx ON admin.admin_unit (code) "
               "WHERE valid_to IS NULL")
    op.execute("CREATE INDEX admin_unit_geom_idx ON admin.admin_unit USING gist (geom)")
    op.create_table(
        "admin_unit_map",
        sa.Column("old_code", sa.Text, nullable=False),
        sa.Column("new_code", sa.Text, nullable=False),
        sa.Column("new_province_code", sa.Text, nullable=False),
        sa.Column("overlap", sa.Text, nullable=False),
        sa.Column("effective_date", sa.Date, nullable=False),
        sa.PrimaryKeyConstraint("old_code", "new_code", "effective_date"),
        sa.CheckConstraint("overlap IN ('full', 'partial')", name="ck_overlap"),
        schema="admin",
    )
    op.create_table(
        "province_crs",
        sa.Column("province_code", sa.Text, primary_key=True),
        sa.Column("central_meridian", sa.Numeric(6, 3), nullable=False),
        sa.Column("epsg", sa.Integer, nullable=False),
        sa.Column("source", sa.Text),
        schema="admin",
    )

    # --- land-use code list (TT 08/2024 plus superseded TT 27/2018 codes) --------------
    op.create_table(
        "land_use_type",
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("catalog", sa.Text, nullable=False),
        sa.Column("name_vi", sa.Text, nullable=False),
        sa.Column("name_en", sa.Text),
        sa.Column("group_code", sa.Text),
        sa.Column("parent_code", sa.Text),
        sa.Column("color", sa.Text),
        sa.Column("replaced_by", sa.Text, sa.ForeignKey("cadastre.land_use_type.code")),
        sa.Column("source", sa.Text),
        schema="cadastre",
    )

    # --- cadastre ----------------------------------------------------------------------
    op.create_table(
        "map_sheet",
        sa.Column("district_code", sa.Text, nullable=False),
        sa.Column("commune_code", sa.Text, nullable=False),
        sa.Column("sheet_no", sa.Integer, nullable=False),
        sa.Column("scale", sa.Integer),
        sa.Column("source_srid", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("district_code", "commune_code", "sheet_no"),
        schema="cadastre",
    )
    def parcel_columns() -> list[sa.Column]:
        """The parcel's attributes, shared by the current and the history table."""
        return [
            sa.Column("province_code", sa.Text, nullable=False),
            sa.Column("district_code", sa.Text, nullable=False),
            sa.Column("commune_code", sa.Text, nullable=False),
            sa.Column("sheet_no", sa.Integer, nullable=False),
            sa.Column("parcel_no", sa.Integer, nullable=False),
            sa.Column("national_id", sa.Text),
            sa.Column("current_province_code", sa.Text,
                      comment="2025 province, derived from commune_code via the crosswalk"),
            sa.Column("current_commune_code", sa.Text,
                      comment="2025 commune where the old commune went wholly into one"),
            sa.Column("area_m2", sa.Numeric(14, 1), nullable=False,
                      comment="stated area (DienTich)"),
            sa.Column("computed_area_m2", sa.Numeric(14, 1), nullable=False,
                      comment="area of geom in the source metric CRS at load time"),
            sa.Column("legal_area_m2", sa.Numeric(14, 1)),
            sa.Column("land_use", sa.Text, nullable=False,
                      comment="codes joined with '+', derived from parcel_land_use"),
            sa.Column("address", sa.Text),
            sa.Column("status", sa.Text, nullable=False, server_default="current"),
            sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
            sa.Column("valid_to", sa.DateTime(timezone=True)),
            sa.Column("source_srid", sa.Integer, nullable=False),
            sa.Column("load_run_id", sa.BigInteger),
            sa.Column("geom", _geom("MULTIPOLYGON"), nullable=False),
        ]
    op.create_table(
        "parcel",
        sa.Column("uid", sa.BigInteger, sa.Identity(), nullable=False),
        *parcel_columns(),
        sa.PrimaryKeyConstraint("district_code", "uid"),
        sa.UniqueConstraint("district_code", "commune_code", "sheet_no", "parcel_no",
                            name="parcel_natural_key"),
        sa.CheckConstraint("status IN ('current', 'pending', 'historic')", name="ck_status"),
        sa.CheckConstraint("sheet_no > 0 AND parcel_no > 0", name="ck_numbers"),
        schema="cadastre",
    )
    # uid is unique by its identity; a plain index keeps the table partitionable by district.
    op.execute("CREATE INDEX parcel_uid_idx ON cadastre.parcel (uid)")
    op.execute("CREATE INDEX parcel_geom_idx ON cadastre.parcel USING gist (geom)")
    op.execute("CREATE INDEX parcel_commune_idx ON cadastre.parcel (commune_code, sheet_no, "
               "parcel_no)")
    # Per-district figures the publisher needs at start-up, kept by the loader, so that
    # starting the API never scans the parcel table (about 700 districts nationally).
    op.create_table(
        "district_summary",
        sa.Column("district_code", sa.Text, primary_key=True),
        sa.Column("parcel_count", sa.BigInteger, nullable=False),
        sa.Column("min_lon", sa.Float), sa.Column("min_lat", sa.Float),
        sa.Column("max_lon", sa.Float), sa.Column("max_lat", sa.Float),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=NOW),
        schema="cadastre",
    )
    # Superseded versions: a re-load that changes a parcel keeps the old one here (SOLA).
    op.create_table(
        "parcel_history",
        sa.Column("history_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("uid", sa.BigInteger, nullable=False),
        *parcel_columns(),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=NOW),
        sa.Column("superseded_by_run", sa.BigInteger),
        schema="cadastre",
    )
    op.execute("CREATE INDEX parcel_history_uid_idx ON cadastre.parcel_history "
               "(district_code, uid)")
    op.create_table(
        "parcel_land_use",
        sa.Column("district_code", sa.Text, nullable=False),
        sa.Column("parcel_uid", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.SmallInteger, nullable=False),
        sa.Column("code", sa.Text, sa.ForeignKey("cadastre.land_use_type.code"),
                  nullable=False),
        sa.Column("source_code", sa.Text, comment="code as delivered, e.g. a 2018 code"),
        sa.Column("area_m2", sa.Numeric(14, 1)),
        sa.Column("is_primary", sa.Boolean, nullable=False),
        sa.Column("term", sa.Text),
        sa.Column("origin", sa.SmallInteger),
        sa.PrimaryKeyConstraint("district_code", "parcel_uid", "seq"),
        sa.ForeignKeyConstraint(["district_code", "parcel_uid"],
                                ["cadastre.parcel.district_code", "cadastre.parcel.uid"],
                                ondelete="CASCADE"),
        sa.CheckConstraint("origin IS NULL OR origin BETWEEN 1 AND 16", name="ck_origin"),
        schema="cadastre",
    )
    op.create_table(
        "parcel_event",
        sa.Column("event_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("district_code", sa.Text, nullable=False),
        sa.Column("parcel_uid", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=NOW),
        sa.Column("load_run_id", sa.BigInteger),
        sa.Column("detail", pg.JSONB),
        sa.CheckConstraint(
            "kind IN ('create', 'update', 'split', 'merge', 'transfer', "
            "'change_of_purpose', 'retire')", name="ck_kind"),
        schema="cadastre",
    )
    op.execute("CREATE INDEX parcel_event_parcel_idx ON cadastre.parcel_event "
               "(district_code, parcel_uid)")
    op.create_table(
        "parcel_lineage",
        sa.Column("event_id", sa.BigInteger,
                  sa.ForeignKey("cadastre.parcel_event.event_id"), nullable=False),
        sa.Column("parent_district_code", sa.Text, nullable=False),
        sa.Column("parent_uid", sa.BigInteger, nullable=False),
        sa.Column("child_district_code", sa.Text, nullable=False),
        sa.Column("child_uid", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("event_id", "parent_uid", "child_uid"),
        schema="cadastre",
    )

    # --- restricted: personal data, never published -----------------------------------
    op.create_table(
        "party",
        sa.Column("party_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False, server_default="individual"),
        sa.Column("full_name", sa.Text, nullable=False),
        sa.Column("id_number", sa.Text, unique=True),
        sa.Column("source_key", sa.Text, nullable=False, unique=True,
                  comment="id:<id_number>, or the parcel and name for owners without one"),
        sa.Column("address", sa.Text),
        sa.CheckConstraint("kind IN ('individual', 'household', 'organisation')",
                           name="ck_kind"),
        schema="restricted",
    )
    op.create_table(
        "certificate",
        sa.Column("certificate_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("district_code", sa.Text, nullable=False),
        sa.Column("serial", sa.Text, nullable=False, unique=True),
        sa.Column("register_no", sa.Text),
        sa.Column("issue_date", sa.Date),
        schema="restricted",
    )
    op.create_table(
        "land_right",
        sa.Column("right_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("district_code", sa.Text, nullable=False),
        sa.Column("parcel_uid", sa.BigInteger, nullable=False),
        sa.Column("party_id", sa.BigInteger, sa.ForeignKey("restricted.party.party_id"),
                  nullable=False),
        sa.Column("certificate_id", sa.BigInteger,
                  sa.ForeignKey("restricted.certificate.certificate_id")),
        sa.Column("right_type", sa.Text, nullable=False, server_default="use"),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False,
                  server_default=NOW),
        sa.Column("valid_to", sa.DateTime(timezone=True)),
        sa.ForeignKeyConstraint(["district_code", "parcel_uid"],
                                ["cadastre.parcel.district_code", "cadastre.parcel.uid"],
                                ondelete="CASCADE"),
        schema="restricted",
    )
    op.execute("CREATE UNIQUE INDEX land_right_current_uq ON restricted.land_right "
               "(district_code, parcel_uid, party_id) WHERE valid_to IS NULL")

    # --- load runs ---------------------------------------------------------------------
    op.create_table(
        "load_run",
        sa.Column("run_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("file_sha256", sa.Text, nullable=False),
        sa.Column("layer", sa.Text),
        sa.Column("source_srid", sa.Integer),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=NOW),
        sa.Column("features_read", sa.Integer, nullable=False),
        sa.Column("inserted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
        sa.Column("districts", pg.ARRAY(sa.Text)),
        sa.Column("options", pg.JSONB),
        sa.Column("message", sa.Text),
        sa.Column("run_by", sa.Text),
        sa.CheckConstraint("mode IN ('strict', 'quarantine')", name="ck_mode"),
        sa.CheckConstraint("status IN ('loaded', 'rejected', 'failed')", name="ck_status"),
        schema="etl",
    )
    op.execute("CREATE INDEX load_run_sha_idx ON etl.load_run (file_sha256)")
    op.create_table(
        "load_reject",
        sa.Column("run_id", sa.BigInteger, sa.ForeignKey("etl.load_run.run_id",
                                                         ondelete="CASCADE"), nullable=False),
        sa.Column("feature_no", sa.Integer, nullable=False),
        sa.Column("field", sa.Text),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("value", sa.Text),
        schema="etl",
    )
    op.execute("CREATE INDEX load_reject_run_idx ON etl.load_reject (run_id, feature_no)")


def downgrade() -> None:
    for schema in ("publish", "etl", "restricted", "cadastre", "admin"):
        op.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
