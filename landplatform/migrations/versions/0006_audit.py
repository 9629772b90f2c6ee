"""Audit log of every write: who, when, what, before/after. Append-only.

API writes insert their row in the write's own transaction (so there is no write without
its audit row, and no audit row for a write that rolled back). File loads by an operator
(``lis load ...``) are recorded by a trigger on ``etl.load_run``, so every loader, present
or future, is covered without code of its own.

The table is append-only: a trigger raises on UPDATE, DELETE and TRUNCATE, so neither a
bug nor an injected statement can rewrite history (a superuser can still drop the trigger:
that is what backups and database logging are for, see docs/SECURITY.md). ``lis_public``
gets no privilege on the schema.

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0006"
down_revision = "0003"
branch_labels = ("audit",)
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS audit")
    op.execute("REVOKE ALL ON SCHEMA audit FROM PUBLIC")
    op.create_table(
        "write_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("clock_timestamp()")),
        sa.Column("actor_sub", sa.Text, nullable=False),
        sa.Column("actor_role", sa.Text, nullable=False),
        sa.Column("actor_district", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("collection", sa.Text),
        sa.Column("district_code", sa.Text),
        sa.Column("parcel_uid", sa.BigInteger),
        sa.Column("request_id", sa.Text),
        sa.Column("before", pg.JSONB),
        sa.Column("after", pg.JSONB),
        sa.Column("load_run_id", sa.BigInteger),
        sa.CheckConstraint("action IN ('create', 'replace', 'delete', 'load')",
                           name="ck_action"),
        sa.CheckConstraint("actor_role IN ('officer', 'admin', 'operator')", name="ck_role"),
        schema="audit",
    )
    op.execute("CREATE INDEX write_log_parcel_idx ON audit.write_log (district_code, "
               "parcel_uid)")
    op.execute("CREATE INDEX write_log_at_idx ON audit.write_log (at)")
    op.execute("""
        CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'audit.write_log is append-only (% refused)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
    """)
    op.execute("""
        CREATE TRIGGER write_log_append_only BEFORE UPDATE OR DELETE ON audit.write_log
        FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()
    """)
    op.execute("""
        CREATE TRIGGER write_log_no_truncate BEFORE TRUNCATE ON audit.write_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()
    """)
    # Operator loads: one row per loaded run (API runs, kind 'api', write their own rows).
    op.execute("""
        CREATE FUNCTION audit.record_load() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO audit.write_log (actor_sub, actor_role, action, collection,
                                       load_run_id, after)
          VALUES (coalesce(NEW.run_by, session_user), 'operator', 'load', NEW.kind,
                  NEW.run_id, jsonb_build_object('file_name', NEW.file_name,
                                                 'file_sha256', NEW.file_sha256,
                                                 'mode', NEW.mode));
          RETURN NULL;
        END $$
    """)
    op.execute("""
        CREATE TRIGGER load_run_audit AFTER INSERT ON etl.load_run
        FOR EACH ROW WHEN (NEW.status = 'loaded' AND NEW.kind <> 'api')
        EXECUTE FUNCTION audit.record_load()
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS load_run_audit ON etl.load_run")
    op.execute("DROP SCHEMA IF EXISTS audit CASCADE")
