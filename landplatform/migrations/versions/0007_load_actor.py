"""File loads through the API: the audit row of a load names the caller's role.

0006's trigger on ``etl.load_run`` takes the actor from ``run_by`` (the loader's OS user,
or whoever the loader was told acts) and always writes the role ``operator``: the only file
loads then came from the host shell. A district officer may now load a file through the API
(``POST /districts/{d}/loads/parcels``), so the trigger also reads the caller's role,
district, the loaded district and the request id from transaction-local settings
(``lis.actor_role``, ``lis.actor_district``, ``lis.district``, ``lis.request_id``), set by
``etl.actor.claim`` in the load's own transaction. Unset (a shell load) it records exactly
what 0006 did. ``set_config(..., true)`` dies with the transaction, so a pooled connection
never carries one caller's identity into the next load; the role is still held to
``ck_role``, so a setting cannot invent a role.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE OR REPLACE FUNCTION audit.record_load() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO audit.write_log (actor_sub, actor_role, actor_district, action,
                                       collection, district_code, request_id, load_run_id,
                                       after)
          VALUES (coalesce(NEW.run_by, session_user),
                  coalesce(nullif(current_setting('lis.actor_role', true), ''), 'operator'),
                  nullif(current_setting('lis.actor_district', true), ''),
                  'load', NEW.kind,
                  nullif(current_setting('lis.district', true), ''),
                  nullif(current_setting('lis.request_id', true), ''),
                  NEW.run_id, jsonb_build_object('file_name', NEW.file_name,
                                                 'file_sha256', NEW.file_sha256,
                                                 'mode', NEW.mode));
          RETURN NULL;
        END $$
    """)


def downgrade() -> None:
    op.execute("""
        CREATE OR REPLACE FUNCTION audit.record_load() RETURNS trigger LANGUAGE plpgsql AS $$
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
