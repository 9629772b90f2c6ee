"""Planner statistics after a load: the tables a load changed much are analysed before
the load returns, so the first read after it is planned as well as the later ones.

Autovacuum's analyse comes later (after 10 % of a table changed and its naptime), and a
freshly loaded district read before it is planned from the empty table's estimates: nested
loops over thousands of rows (a first GDAL pull of a 16,522-parcel district took 13.3 s
against 3.7 s a minute later). A table is analysed when it never was, or when the load
changed at least ``STALE_SHARE`` of the rows the planner thinks it has; a one-parcel
upload analyses nothing. ANALYZE runs as the tables' owner through ``public.lis_analyze``
(the application role owns no table; PostgreSQL 15 lets only the owner analyse).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.engine import Engine

STALE_SHARE = 0.1
MIN_ROWS = 500  # below this many changed rows no table is worth a fresh sample


def refresh_statistics(engine: Engine, tables: Sequence[str], changed: int) -> list[str]:
    """ANALYZE each of ``tables`` (schema-qualified) the load made stale; the ones done."""
    if changed < MIN_ROWS or not tables:
        return []
    with engine.connect() as conn:
        estimates = dict(conn.execute(text("""
            SELECT t.name, c.reltuples FROM unnest(CAST(:t AS text[])) AS t(name)
              JOIN pg_class c ON c.oid = to_regclass(t.name)
        """), {"t": list(tables)}).all())
    done = []
    for table in tables:
        estimate = estimates.get(table)
        if estimate is None:
            continue
        if estimate < 0 or changed >= STALE_SHARE * estimate:
            with engine.begin() as conn:
                conn.execute(text("SELECT public.lis_analyze(CAST(:t AS regclass))"),
                             {"t": table})
            done.append(table)
    return done
