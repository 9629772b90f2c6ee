"""Who a load is done for, when it is not the operator at the shell.

A file loaded through the API is the caller's act, not the server process's OS user's. The
load run's ``run_by`` carries the token subject, and the audit trigger on ``etl.load_run``
(migration 0007) reads the role, district and request id from transaction-local settings
that :func:`claim` sets in the load's own transaction, so the audit row is written by the
same mechanism as for every shell load and cannot outlive or precede the run it records.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Actor:
    """An API caller: token subject and role ('officer' | 'admin'), the officer's district,
    the district the load is for, and the request id (to find the request in the logs)."""

    sub: str
    role: str
    district: str | None = None
    for_district: str | None = None
    request_id: str | None = None


def claim(conn: Connection, actor: Actor | None) -> None:
    """Name ``actor`` for the rest of this transaction (nothing to do for the operator)."""
    if actor is None:
        return
    conn.execute(text("""
        SELECT set_config('lis.actor_role', :role, true),
               set_config('lis.actor_district', :district, true),
               set_config('lis.district', :for_district, true),
               set_config('lis.request_id', :rid, true)
    """), {"role": actor.role, "district": actor.district or "",
           "for_district": actor.for_district or "", "rid": actor.request_id or ""})
