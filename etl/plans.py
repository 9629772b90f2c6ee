"""Load a delivered plan: metadata (CLI + ``.plan.yaml`` sidecar), zones file, one transaction.

The same pattern as parcels (``etl.parcels``): read, map fields, validate every feature,
then either record a rejected run (strict mode, any reject) or stage with COPY and merge
with SQL in one transaction under an advisory lock, recording the run (kind 'plan') and
every reject/repair in ``etl.load_run``/``etl.load_reject``. Re-loading the same delivery
writes nothing but a new load-run record.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from etl import parcel_merge as m
from etl import plan_merge as pm
from etl.fieldmap import FieldMapping
from etl.parcel_rules import resolve_crs
from etl.parcels import record_failure
from etl.plan_rules import (
    Options,
    PlanMeta,
    find_sidecar,
    plan_metadata,
    prepare_zones,
    read_sidecar,
)
from etl.progress import Progress
from etl.reference import Reference
from etl.report import LoadError, LoadResult
from etl.sources import file_sha256, open_source

KIND = "plan"


@dataclass
class PlanLoadResult(LoadResult):
    """A load result that also names the plan and counts zones removed."""

    plan_code: str | None = None
    plan_action: str | None = None  # created | updated | unchanged
    removed: int = 0

    def summary(self) -> str:
        if self.status != "loaded":
            return super().summary().replace(" features ", " zones ")
        # Worded apart from parcels' ": loaded as run" so the two are told apart in logs.
        text_ = (f"{self.file.name}: plan {self.plan_code} ({self.plan_action}): loaded plan "
                 f"run {self.run_id}: {self.features_read} zones, {self.inserted} inserted, "
                 f"{self.updated} updated, {self.unchanged} unchanged, {self.removed} removed")
        if self.rejects:
            text_ += f", {self.rejected} QUARANTINED (not loaded, listed above)"
        if self.repairs:
            text_ += f", {len(self.repairs)} repaired"
        return text_


def delivery_sha256(path: Path) -> str:
    """The delivery's identity: the data files and the sidecar (changed metadata counts)."""
    sidecar = find_sidecar(path)
    return file_sha256(path, extra=[sidecar] if sidecar else [])


def _check_plan_key(conn: Connection, meta: PlanMeta, file: str) -> None:
    """A plan code names one district's plan for good: a delivery re-using the code of a
    plan of another district is a mistake (it would move and replace that plan's zones),
    not a re-delivery."""
    loaded = conn.execute(text("SELECT district_code FROM planning.plan "
                               "WHERE plan_code = :code"), {"code": meta.plan_code}).scalar()
    if loaded is not None and loaded != meta.district_code:
        raise LoadError(file, f"plan_code {meta.plan_code} is already loaded for district "
                              f"{loaded}; this delivery is for district "
                              f"{meta.district_code}: use a new plan code")


def load_plan(engine: Engine, path: Path, *, metadata: dict | None = None,
              options: Options | None = None, quarantine: bool = False,
              layer: str | None = None, encoding: str | None = None,
              mapping: str | Path = "zones", progress: Progress | None = None
              ) -> PlanLoadResult:
    """Load one plan file; never raises for bad data, the result says what happened.

    ``metadata`` holds command-line values (plan_code, plan_type, district, period, scale,
    decision_no, decision_date, approved_by, title, admin_level, admin_code); they override
    the sidecar's.
    """
    options = options or Options()
    progress = progress or Progress("plan", enabled=False)
    mode = "quarantine" if quarantine else "strict"
    result = PlanLoadResult(file=path, mode=mode)
    started = datetime.now(UTC)
    run_options: dict = {**asdict(options), "layer": layer, "encoding": encoding,
                         "mapping": str(mapping)}
    sha = delivery_sha256(path) if path.exists() else None
    try:
        sidecar_path = find_sidecar(path)
        sidecar = read_sidecar(sidecar_path, path.name)
        run_options["sidecar"] = sidecar_path.name if sidecar_path else None
        with engine.connect() as conn:
            ref = Reference.load(conn)
        meta = plan_metadata(path.name, sidecar, metadata or {}, ref)
        with engine.connect() as conn:
            _check_plan_key(conn, meta, path.name)
        result.plan_code = meta.plan_code
        run_options["plan"] = meta.as_json()
        progress.step(f"reading {path.name} (plan {meta.plan_code})")
        source = open_source(path, layer=layer, encoding=encoding)
        result.features_read = len(source.frame)
        crs = resolve_crs(path.name, source.crs, options.crs)
        result.source_srid = crs.to_2d().to_epsg(min_confidence=70)
        progress.step(f"validating {result.features_read:,} zones ({crs.name})")
        rows, issues, codes = prepare_zones(source.frame, path.name, crs, ref,
                                            FieldMapping.load(mapping), meta, options)
        issues = source.issues + issues  # whole-file repairs: encoding, M values
    except LoadError as exc:
        result.status, result.message = "failed", exc.reason
        record_failure(engine, result, started, run_options, path, kind=KIND, sha256=sha)
        return result

    result.rejects = [i for i in issues if i.severity == "reject"]
    result.repairs = [i for i in issues if i.severity == "repair"]
    result.districts = [meta.district_code]
    run = {"file_name": str(path), "sha256": sha, "layer": source.layer,
           "source_srid": result.source_srid, "mode": mode, "started_at": started,
           "features_read": result.features_read, "options": run_options, "kind": KIND}
    if result.rejects and not quarantine:
        result.status = "rejected"
        with engine.begin() as conn:
            result.run_id = m.start_run(conn, status="rejected", **run)
            m.finish_run(conn, result.run_id, counts={}, rejected=result.rejected,
                         districts=result.districts)
            m.record_issues(conn, result.run_id, issues)
        return result

    progress.step(f"staging {len(rows):,} zones")
    with engine.begin() as conn:
        pm.lock_plan(conn, meta.plan_code)
        run_id = m.start_run(conn, status="loaded", **run)
        plan_id, result.plan_action = pm.upsert_plan(conn, meta, result.source_srid, run_id)
        pm.stage(conn, rows, lambda d, t: progress.update("staging", d, t))
        progress.step("merging in one transaction")
        counts = pm.merge_zones(conn, plan_id, codes)
        zones_changed = any(counts[k] for k in ("inserted", "updated", "removed"))
        pm.finish_plan(conn, plan_id, run_id,
                       zones_changed and result.plan_action == "unchanged")
        m.finish_run(conn, run_id, counts=counts, rejected=result.rejected,
                     districts=result.districts)
        if counts["removed"]:
            conn.execute(text("UPDATE etl.load_run SET message = :msg WHERE run_id = :run"),
                         {"msg": f"{counts['removed']} zone(s) of plan {meta.plan_code} "
                                 "removed: not in this delivery", "run": run_id})
        m.record_issues(conn, run_id, issues)
    result.run_id = run_id
    result.inserted, result.updated = counts["inserted"], counts["updated"]
    result.unchanged, result.removed = counts["unchanged"], counts["removed"]
    return result


def _print(message: str, err: bool = False) -> None:
    print(message, file=sys.stderr if err else sys.stdout)


def load_sample_plans(engine: Engine, plans_dir: Path,
                      echo: Callable[..., None] = _print) -> bool:
    """Load the sample plans listed in ``plans_dir/manifest.json``, after the parcels.

    A delivery already loaded (same data files and sidecar) is skipped, like parcels.
    No manifest: nothing to do (the plans are an optional part of the samples).
    """
    manifest_path = plans_dir / "manifest.json"
    if not manifest_path.exists():
        return True
    entries = json.loads(manifest_path.read_text(encoding="utf-8"))
    ok = True
    for entry in entries:
        path = plans_dir / entry["file"]
        with engine.connect() as conn:
            run = conn.execute(text(
                "SELECT run_id FROM etl.load_run WHERE file_sha256 = :sha AND kind = :kind "
                "AND status = 'loaded' ORDER BY run_id DESC LIMIT 1"),
                {"sha": delivery_sha256(path), "kind": KIND}).scalar()
        if run is not None:
            echo(f"Samples: plan {path.name} already loaded (run {run}), skipped")
            continue
        result = load_plan(engine, path, progress=Progress("samples"))
        for line in result.detail_lines():
            echo(line, err=True)
        echo(f"Samples: {result.summary()}")
        ok &= result.status == "loaded"
    return ok


__all__ = ["KIND", "Options", "PlanLoadResult", "PlanMeta", "delivery_sha256", "load_plan",
           "load_sample_plans"]
