"""CQL2's accent-insensitive comparison (ACCENTI): ``public.lis_unaccent(text)``.

People search Vietnamese names without their marks ("Le Duan" for "Lê Duẩn", "Doi Can"
for "Đội Cấn"). The ``unaccent`` extension (trusted: the database's owner may create it)
maps each marked letter, đ/Đ included, to its base; the wrapper is IMMUTABLE with its
dictionary named, so an expression index can use it later.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public")
    op.execute("""
        CREATE FUNCTION public.lis_unaccent(value text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        RETURN public.unaccent('public.unaccent'::regdictionary, value)
    """)


def downgrade() -> None:
    op.execute("DROP FUNCTION public.lis_unaccent(text)")
