"""The audit files registered dossiers (land changes) under their own action.

A dossier (a split, a transfer, a freeze...) changes several rows at once; its audit row
says ``register`` with the dossier's kind and every parcel it touched in ``after``, so the
log answers "who registered which change" without reading the domain's tables.

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-02
"""

from alembic import op

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE audit.write_log DROP CONSTRAINT ck_action")
    op.execute("ALTER TABLE audit.write_log ADD CONSTRAINT ck_action CHECK (action IN "
               "('create', 'replace', 'delete', 'load', 'read_rights', 'register'))")


def downgrade() -> None:
    op.execute("DELETE FROM audit.write_log WHERE action = 'register'")
    op.execute("ALTER TABLE audit.write_log DROP CONSTRAINT ck_action")
    op.execute("ALTER TABLE audit.write_log ADD CONSTRAINT ck_action CHECK (action IN "
               "('create', 'replace', 'delete', 'load', 'read_rights'))")
