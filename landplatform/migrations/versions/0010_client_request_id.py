"""The audit files a write under the server's request id, with the client's beside it;
and reads of restricted data are audited too.

Until now ``audit.write_log.request_id`` was the client's ``X-Request-ID`` when it sent
one: a client could choose, or repeat, the id its act was filed under. The server now
makes the id of every request; the client's value, when given, is kept in
``client_request_id`` so a client can still find its request.

Who read which parcel's owners and rights, when, and why (a reason the reader may give)
is now an audit row as well (action ``read_rights``, ``reason``).

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-01
"""

from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE audit.write_log ADD COLUMN client_request_id text, "
               "ADD COLUMN reason text")
    op.execute("ALTER TABLE audit.write_log DROP CONSTRAINT ck_action")
    op.execute("ALTER TABLE audit.write_log ADD CONSTRAINT ck_action CHECK (action IN "
               "('create', 'replace', 'delete', 'load', 'read_rights'))")


def downgrade() -> None:
    op.execute("DELETE FROM audit.write_log WHERE action = 'read_rights'")
    op.execute("ALTER TABLE audit.write_log DROP CONSTRAINT ck_action")
    op.execute("ALTER TABLE audit.write_log ADD CONSTRAINT ck_action CHECK (action IN "
               "('create', 'replace', 'delete', 'load'))")
    op.execute("ALTER TABLE audit.write_log DROP COLUMN client_request_id, "
               "DROP COLUMN reason")
