"""The load-run ledger: one ``etl.load_run`` row per load (whoever runs it, however it
ends) and its located rejects, repairs and notes in ``etl.load_reject``.

Every loader records its runs here, in the load's own transaction (a rejected or failed
run in a small one of its own), so "what was loaded, when, by whom, and what was refused"
has one answer for every kind of load.
"""

from __future__ import annotations

import getpass
import json
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from etl.report import Issue, LoadResult
from etl.sources import file_sha256

PREFIX = {"reject": "", "repair": "[repaired] ", "note": "[note] "}


def start_run(conn: Connection, *, file_name: str, sha256: str, layer: str | None,
              source_srid: int | None, mode: str, status: str, started_at, features_read: int,
              options: dict, kind: str, message: str | None = None,
              run_by: str | None = None) -> int:
    """A load_run row. ``run_by`` is the actor (an API token's subject), else the OS user
    running the loader, else the database role: who did it, not only which login."""
    return conn.execute(text("""
        INSERT INTO etl.load_run (kind, file_name, file_sha256, layer, source_srid, mode,
                                  status, started_at, features_read, options, message, run_by)
        VALUES (:kind, :file_name, :sha, :layer, :srid, :mode, :status, :started,
                :read, CAST(:options AS jsonb), :message, coalesce(:run_by, current_user))
        RETURNING run_id
    """), {"kind": kind, "file_name": file_name, "sha": sha256, "layer": layer,
           "srid": source_srid, "mode": mode, "status": status, "started": started_at,
           "read": features_read, "options": json.dumps(options), "message": message,
           "run_by": run_by or _os_user()}
    ).scalar_one()


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return None


def finish_run(conn: Connection, run_id: int, *, counts: dict[str, int], rejected: int,
               districts: list[str]) -> None:
    conn.execute(text("""
        UPDATE etl.load_run SET inserted = :inserted, updated = :updated,
               unchanged = :unchanged, rejected = :rejected, districts = :districts,
               finished_at = clock_timestamp()
         WHERE run_id = :run
    """), {"inserted": counts.get("inserted", 0), "updated": counts.get("updated", 0),
           "unchanged": counts.get("unchanged", 0), "rejected": rejected,
           "districts": sorted(districts), "run": run_id})


def record_issues(conn: Connection, run_id: int, issues: list[Issue]) -> None:
    """Every issue, located; repairs and notes (loaded, but worth knowing) marked as such,
    after the rejects and repairs."""
    if not issues:
        return
    ordered = sorted(issues, key=lambda i: i.severity == "note")
    conn.execute(text("""
        INSERT INTO etl.load_reject (run_id, feature_no, field, reason, value)
        VALUES (:run, :no, :field, :reason, :value)
    """), [{"run": run_id, "no": i.feature_no, "field": i.field,
            "reason": PREFIX.get(i.severity, "") + i.reason, "value": i.value}
           for i in ordered])


def record_failure(engine: Engine, result: LoadResult, started: datetime, options: dict,
                   path: Path, *, kind: str, sha256: str | None = None,
                   run_by: str | None = None) -> None:
    """Keep a record of a failed run (its own small transaction; no data touched)."""
    sha = sha256 or (file_sha256(path) if path.exists() else "-")
    try:
        with engine.begin() as conn:
            result.run_id = start_run(conn, file_name=result.name or str(path), sha256=sha,
                                      layer=None,
                                      source_srid=result.source_srid, mode=result.mode,
                                      status="failed", started_at=started,
                                      features_read=result.features_read, options=options,
                                      message=result.message, kind=kind, run_by=run_by)
    except Exception:  # noqa: BLE001 - the failure report matters more than its record
        result.run_id = None


def loaded_run(engine: Engine, sha256: str, kind: str | None = None) -> int | None:
    """The latest run that loaded a delivery with this identity (of ``kind``, if given)."""
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT run_id FROM etl.load_run WHERE file_sha256 = :sha AND status = 'loaded' "
            "AND (CAST(:kind AS text) IS NULL OR kind = :kind) "
            "ORDER BY run_id DESC LIMIT 1"), {"sha": sha256, "kind": kind}).scalar()
