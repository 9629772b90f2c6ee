"""Parties keyed by their document and their kind: a household apart from its head.

A household's document number is its head's CCCD, so the household (``Hộ gia đình``,
one party) and the head as a person (``Cá nhân``, another, holding other parcels in their
own name) carry the same number. ``restricted.party.id_number`` was unique, so the loader
could not keep both; the party's natural key is ``source_key`` (``id:<number>``, or
``household:<number>`` for a household), unique as before. This drops the uniqueness of
the bare number and keeps an index on it for look-ups by number.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE restricted.party DROP CONSTRAINT IF EXISTS party_id_number_key")
    op.execute("CREATE INDEX IF NOT EXISTS party_id_number_idx ON restricted.party "
               "(id_number)")


def downgrade() -> None:
    # Fails, and changes nothing, while a household and its head share a number: which
    # party to drop is not a migration's to decide.
    op.execute("DROP INDEX IF EXISTS restricted.party_id_number_idx")
    op.execute("ALTER TABLE restricted.party ADD CONSTRAINT party_id_number_key "
               "UNIQUE (id_number)")
