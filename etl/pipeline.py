"""The one load pipeline every loader runs through: strict or quarantine, all or nothing.

A delivery is read, mapped and validated by its loader (``Loader.prepare``); then exactly
one of these happens, each recorded in the load-run ledger with every located issue:

- **failed**: the delivery cannot be read at all (a ``LoadError``); nothing touched. A
  loader that streams its file may find that half-way (text in a wrong code page in a
  later batch): the transaction is rolled back and the run recorded as failed.
- **rejected** (strict mode, the default): some row or feature was rejected; nothing is
  loaded, the rejection is recorded.
- **loaded**: in ONE transaction, under the loader's advisory lock, the run row is written,
  the loader stages and merges (``Loader.merge``), the counts and issues are recorded, and
  the transaction commits; in quarantine mode the rejected rows are left out and listed.

A check the database makes on the staged rows (e.g. the cadastre's overlaps with current
parcels) is part of the merge: in strict mode the loader raises ``Refused`` and the
transaction is rolled back, the run recorded as rejected; in quarantine mode it leaves the
rows out and adds their issues. A kill at any point before COMMIT leaves the database as
it was. The loaders differ only in
what they read, how they validate and how they merge; the order of these steps, what is
recorded when, and who the run is attributed to are decided here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from etl import ledger
from etl.actor import Actor, claim
from etl.progress import Progress
from etl.report import Issue, LoadError, LoadResult
from etl.statistics import refresh_statistics


@dataclass
class Prepared:
    """What validation produced, as the pipeline needs it: every issue (rejects, repairs,
    notes), the districts the delivery touches, its identity and the layer read."""

    issues: list[Issue]
    districts: list[str]
    sha256: str
    layer: str | None = None


class Refused(Exception):
    """Raised by ``Loader.merge`` (strict mode) when the database rejects staged rows:
    nothing of the load is kept, and the run is recorded as rejected with ``issues``."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__(f"{len(issues)} staged row(s) rejected")
        self.issues = issues


class Loader(Protocol):
    """One kind of delivery (parcels, a plan, a price table, ...), for one load."""

    kind: str  # etl.load_run.kind
    tables: tuple[str, ...]  # the permanent tables its merge writes (for statistics)

    def identity(self) -> str | None:
        """The delivery's identity (sha256 over its files) when it can be had without
        reading it; recorded even when the load fails."""

    def prepare(self, engine: Engine, result: LoadResult, run_options: dict) -> Prepared:
        """Read, map and validate (setting ``result.features_read``/``source_srid``, and
        adding what it learns, e.g. a sidecar's name, to ``run_options``); raise
        ``LoadError`` for a whole-file problem."""

    def lock(self, conn: Connection) -> None:
        """Serialise concurrent loads of the same keys (an advisory lock) until COMMIT."""

    def merge(self, conn: Connection, run_id: int, result: LoadResult, progress: Progress,
              issues: list[Issue]) -> dict[str, int]:
        """Stage and merge the validated rows (set-based SQL, in the given transaction);
        the counts: inserted, updated, unchanged and any of the loader's own. Issues found
        on the way (rows the database rejected in quarantine mode, notes) are appended to
        ``issues``; in strict mode a reject raises ``Refused``."""


def run_load(engine: Engine, loader: Loader, result: LoadResult, *, quarantine: bool,
             options: dict, progress: Progress, actor: Actor | None = None) -> LoadResult:
    """Run one delivery through the pipeline; never raises for bad data: the result (and
    the ledger) say what happened. ``options`` are recorded with the run; ``actor`` is who
    the load is for (``run_by`` and the audit row), when not the operator at the shell."""
    started = datetime.now(UTC)
    run_by = actor.sub if actor else None
    sha = None
    try:
        sha = loader.identity()
        prepared = loader.prepare(engine, result, options)
    except LoadError as exc:
        result.status, result.message = "failed", exc.reason
        ledger.record_failure(engine, result, started, options, result.file,
                              kind=loader.kind, sha256=sha, run_by=run_by)
        return result
    issues = prepared.issues
    _split(result, issues)
    result.districts = prepared.districts
    run = {"file_name": result.name or str(result.file), "sha256": prepared.sha256,
           "layer": prepared.layer,
           "source_srid": result.source_srid, "mode": result.mode, "started_at": started,
           "features_read": result.features_read, "options": options, "kind": loader.kind,
           "run_by": run_by}
    if result.rejects and not quarantine:
        return _rejected(engine, result, run, issues)

    try:
        with engine.begin() as conn:
            loader.lock(conn)
            claim(conn, actor)  # before the run row: its audit trigger reads the actor
            result.run_id = run_id = ledger.start_run(conn, status="loaded", **run)
            counts = loader.merge(conn, run_id, result, progress, issues)
            _split(result, issues)
            ledger.finish_run(conn, run_id, counts=counts, rejected=result.rejected,
                              districts=result.districts)
            ledger.record_issues(conn, run_id, issues)
    except Refused as refused:  # rolled back: nothing of the load is kept
        issues = issues + refused.issues
        _split(result, issues)
        return _rejected(engine, result, run, issues)
    except LoadError as exc:  # a streamed file found unusable half-way: rolled back
        result.status, result.message = "failed", exc.reason
        result.run_id, result.rejects = None, []
        ledger.record_failure(engine, result, started, options, result.file,
                              kind=loader.kind, sha256=prepared.sha256, run_by=run_by)
        return result
    result.inserted, result.updated = counts.get("inserted", 0), counts.get("updated", 0)
    result.unchanged = counts.get("unchanged", 0)
    try:  # committed: the first read after the load is planned from current statistics
        refresh_statistics(engine, loader.tables, result.inserted + result.updated)
    except DBAPIError as exc:  # the load stands; the planner catches up with autovacuum
        result.notes.append(Issue(0, "statistics", f"planner statistics not refreshed "
                                  f"({type(exc.orig).__name__}); autovacuum will",
                                  severity="note"))
    return result


def _split(result: LoadResult, issues: list[Issue]) -> None:
    result.rejects = [i for i in issues if i.severity == "reject"]
    result.repairs = [i for i in issues if i.severity == "repair"]
    result.notes = [i for i in issues if i.severity == "note"]


def _rejected(engine: Engine, result: LoadResult, run: dict, issues: list[Issue]
              ) -> LoadResult:
    """Record a rejected run (strict mode): its issues, no data."""
    result.status = "rejected"
    with engine.begin() as conn:
        result.run_id = ledger.start_run(conn, status="rejected", **run)
        ledger.finish_run(conn, result.run_id, counts={}, rejected=result.rejected,
                          districts=result.districts)
        ledger.record_issues(conn, result.run_id, issues)
    return result
