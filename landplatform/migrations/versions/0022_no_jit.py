"""No JIT compilation in the platform's database (``ALTER DATABASE ... SET jit = off``).

PostgreSQL compiles a statement with LLVM when its estimated cost passes
``jit_above_cost``. Over the cadastre's partitioned tables (cadastre migration 0020) a
national request (a bbox, a tile) plans one scan per province partition, so its estimate
crosses that threshold while the work stays small: the compilation, of every partition's
filter, cost hundreds of milliseconds on a request that runs in a few (docs/benchmarks.md,
"JIT"). The platform serves short statements; its long ones (a delivery's merge) spend
their time in indexes and I/O, not in expression evaluation, where JIT would help.

Set on the database, so every session of every client (the API, the loader, a GIS client
with its own connection) starts without it; a session may still ``SET jit = on``.
Takes effect for new sessions.

Revision ID: 0022
Revises: 0015
Create Date: 2026-12-02
"""

from alembic import op

revision = "0022"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET jit = off', "
               "current_database()); END $$")


def downgrade() -> None:
    op.execute("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET jit', "
               "current_database()); END $$")
