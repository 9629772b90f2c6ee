"""Statistics without ownership: ``public.lis_analyze(table)`` for the application role.

PostgreSQL 15 lets only a table's owner (or a superuser) ANALYZE it; the application role
owns nothing (``landplatform.roles``), so a run that needs current planner statistics (a
district loaded a moment ago, before autovacuum) would be skipped with a warning. The
function runs ANALYZE as its owner, for a table of the platform's own schemas only;
EXECUTE is the application role's alone (``landplatform.roles.GRANTS``).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION public.lis_analyze(target regclass) RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
          schema_name name;
        BEGIN
          SELECT n.nspname INTO schema_name FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.oid = target AND c.relkind IN ('r', 'p', 'm');
          IF schema_name IS NULL OR schema_name IN ('pg_catalog', 'information_schema',
                                                   'audit', 'public')
             OR schema_name LIKE 'pg\\_%' THEN
            RAISE EXCEPTION 'lis_analyze: % is not a table of the platform', target
                  USING ERRCODE = 'insufficient_privilege';
          END IF;
          EXECUTE format('ANALYZE %s', target);
        END $$
    """)
    op.execute("REVOKE ALL ON FUNCTION public.lis_analyze(regclass) FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION public.lis_analyze(regclass)")
