"""Load delivered cadastral parcel files: read, map, validate, reproject, stage, merge.

One file is one load run and one transaction. Strict mode (the default) loads nothing if
any feature is rejected; ``quarantine`` loads the good rows and records the bad ones.
Re-loading the same file changes no data: rows are matched by their natural key
(commune, sheet, parcel number) and only real differences are written.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine

from etl import parcel_merge as m
from etl.actor import Actor, claim
from etl.fieldmap import FieldMapping
from etl.parcel_rules import Options, prepare_parcels, resolve_crs
from etl.progress import Progress
from etl.reference import Reference
from etl.report import Issue, LoadError, LoadResult
from etl.sources import file_sha256, open_source


def load_parcels(engine: Engine, path: Path, *, options: Options | None = None,
                 quarantine: bool = False, layer: str | None = None,
                 encoding: str | None = None, mapping: str | Path = "parcels",
                 progress: Progress | None = None, only_districts: set[str] | None = None,
                 actor: Actor | None = None) -> LoadResult:
    """Load one file; never raises for bad data, the result says what happened.

    ``only_districts`` (an API load for one district): a feature whose commune lies in any
    other district is rejected, located, before anything is merged, so strict mode refuses
    the file and quarantine leaves those features out. ``actor``: who the load is for (the
    run's ``run_by`` and the audit row), when not the operator at the shell.
    """
    options = options or Options()
    progress = progress or Progress("load", enabled=False)
    mode = "quarantine" if quarantine else "strict"
    result = LoadResult(file=path, mode=mode)
    started = datetime.now(UTC)
    run_options = {**asdict(options), "layer": layer, "encoding": encoding,
                   "mapping": str(mapping)}
    try:
        progress.step(f"reading {path.name}")
        source = open_source(path, layer=layer, encoding=encoding)
        result.features_read = len(source.frame)
        crs = resolve_crs(path.name, source.crs, options.crs)
        result.source_srid = crs.to_2d().to_epsg(min_confidence=70)
        progress.step(f"validating {result.features_read:,} features ({crs.name})")
        with engine.connect() as conn:
            ref = Reference.load(conn)
        rows, issues = prepare_parcels(source.frame, path.name, crs, ref,
                                       FieldMapping.load(mapping), options)
        issues = source.issues + issues  # whole-file repairs: encoding, M values
        # The rows hold what is staged: drop the read frame (an empty one keeps the type)
        # so a million features are not held twice through staging and the merge.
        source.frame = source.frame.iloc[0:0]
    except LoadError as exc:
        result.status, result.message = "failed", exc.reason
        record_failure(engine, result, started, run_options, path,
                       run_by=actor.sub if actor else None)
        return result
    if only_districts is not None:
        rows, outside = restrict_districts(rows, only_districts)
        issues += outside

    result.rejects = [i for i in issues if i.severity == "reject"]
    result.repairs = [i for i in issues if i.severity == "repair"]
    result.districts = sorted(rows["district_code"].dropna().unique().tolist())
    if result.rejects and not quarantine:
        result.status = "rejected"
        with engine.begin() as conn:
            run_id = m.start_run(conn, file_name=str(path), sha256=source.sha256,
                                 layer=source.layer, source_srid=result.source_srid,
                                 mode=mode, status="rejected", started_at=started,
                                 features_read=result.features_read, options=run_options,
                                 run_by=actor.sub if actor else None)
            m.finish_run(conn, run_id, counts={}, rejected=result.rejected,
                         districts=result.districts)
            m.record_issues(conn, run_id, issues)
        result.run_id = run_id
        return result

    progress.step(f"staging {len(rows):,} rows")
    with engine.begin() as conn:
        m.lock_districts(conn, result.districts)
        claim(conn, actor)  # before the run row: its audit trigger reads the actor
        run_id = m.start_run(conn, file_name=str(path), sha256=source.sha256,
                             layer=source.layer, source_srid=result.source_srid, mode=mode,
                             status="loaded", started_at=started,
                             features_read=result.features_read, options=run_options,
                             run_by=actor.sub if actor else None)
        m.stage(conn, rows, lambda d, t: progress.update("staging", d, t))
        progress.step("merging in one transaction")
        counts = m.merge(conn, run_id)
        m.finish_run(conn, run_id, counts=counts, rejected=result.rejected,
                     districts=result.districts)
        m.record_issues(conn, run_id, issues)
    result.run_id = run_id
    result.inserted, result.updated = counts["inserted"], counts["updated"]
    result.unchanged = counts["unchanged"]
    return result


def record_failure(engine: Engine, result: LoadResult, started: datetime,
                   options: dict, path: Path, *, kind: str = "parcels",
                   sha256: str | None = None, run_by: str | None = None) -> None:
    """Keep a record of a failed run (its own small transaction; no data touched)."""
    sha = sha256 or (file_sha256(path) if path.exists() else "-")
    try:
        with engine.begin() as conn:
            result.run_id = m.start_run(conn, file_name=str(path), sha256=sha, layer=None,
                                        source_srid=result.source_srid, mode=result.mode,
                                        status="failed", started_at=started,
                                        features_read=result.features_read, options=options,
                                        message=result.message, kind=kind, run_by=run_by)
    except Exception:  # noqa: BLE001 - the failure report matters more than its record
        result.run_id = None


def restrict_districts(rows: pd.DataFrame, allowed: set[str]) -> tuple[pd.DataFrame, list[Issue]]:
    """(rows of the ``allowed`` districts, a located reject for each other row): a load for
    one district must not touch another's parcels, whoever sends it."""
    outside = ~rows["district_code"].isin(allowed)
    wanted = ", ".join(sorted(allowed))
    issues = [Issue(int(r.feature_no), "commune_code",
                    f"commune {r.commune_code} lies in district {r.district_code}, not "
                    f"{wanted}: this load is for {wanted} only", r.commune_code)
              for r in rows.loc[outside, ["feature_no", "commune_code", "district_code"]]
              .itertuples(index=False)]
    return rows.loc[~outside].reset_index(drop=True), issues
