"""Load a delivered plan: metadata (CLI + ``.plan.yaml`` sidecar), zones file, one transaction.

The same pattern as parcels (``cadastre.loader``): read, map fields, validate every feature,
then either record a rejected run (strict mode, any reject) or stage with COPY and merge
with SQL in one transaction under an advisory lock, recording the run (kind 'plan') and
every reject/repair in ``etl.load_run``/``etl.load_reject``. Re-loading the same delivery
writes nothing but a new load-run record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from cadastre.loader import PARCEL_LAYERS
from cadastre.location import check_location
from cadastre.reference import Reference
from etl.fieldmap import FieldMapping
from etl.pipeline import Prepared, Refused, run_load
from etl.progress import Progress
from etl.report import Issue, LoadError, LoadResult
from etl.rowcheck import resolve_crs
from etl.samples import load_listed, read_manifest
from etl.sources import file_sha256, open_source
from planning import MAPPINGS
from planning import merge as pm
from planning.rules import (
    Options,
    PlanMeta,
    find_sidecar,
    plan_metadata,
    prepare_zones,
    read_sidecar,
)

KIND = "plan"
# What the location check reads of the stage (zones name no commune).
STAGED = ("SELECT feature_no, district_code, NULL::text AS commune_code, geom "
          "FROM stage_zone")


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


class PlanLoader:
    """One plan delivery through the pipeline (``etl.pipeline.Loader``)."""

    kind = KIND
    tables = ("planning.zone", "planning.plan")  # analysed after a big load

    def __init__(self, path: Path, metadata: dict, options: Options, layer: str | None,
                 encoding: str | None, mapping: str | Path, progress: Progress,
                 quarantine: bool = False) -> None:
        self.path, self.metadata, self.options = path, metadata, options
        self.quarantine = quarantine
        self.layer, self.encoding, self.mapping, self.progress = layer, encoding, mapping, \
            progress
        self.sha = delivery_sha256(path) if path.exists() else None

    def identity(self) -> str | None:
        return self.sha

    def prepare(self, engine: Engine, result: PlanLoadResult, run_options: dict
                ) -> Prepared:
        path, options, progress = self.path, self.options, self.progress
        sidecar_path = find_sidecar(path)
        sidecar = read_sidecar(sidecar_path, path.name)
        run_options["sidecar"] = sidecar_path.name if sidecar_path else None
        with engine.connect() as conn:
            ref = Reference.load(conn)
        meta = plan_metadata(path.name, sidecar, self.metadata, ref)
        with engine.connect() as conn:
            _check_plan_key(conn, meta, path.name)
        result.plan_code = meta.plan_code
        run_options["plan"] = meta.as_json()
        progress.step(f"reading {path.name} (plan {meta.plan_code})")
        # as before the domains were split: a several-layer file prefers a parcel-named one
        source = open_source(path, layer=self.layer, encoding=self.encoding,
                             preferred_layers=PARCEL_LAYERS)
        result.features_read = len(source.frame)
        crs = resolve_crs(path.name, source.crs, options.crs)
        result.source_srid = crs.to_2d().to_epsg(min_confidence=70)
        progress.step(f"validating {result.features_read:,} zones ({crs.name})")
        self.rows, issues, self.codes = prepare_zones(
            source.frame, path.name, crs, ref, FieldMapping.load(self.mapping, MAPPINGS),
            meta, options)
        self.meta = meta
        return Prepared(source.issues + issues,  # whole-file repairs: encoding, M values
                        [meta.district_code], self.sha, source.layer)

    def lock(self, conn: Connection) -> None:
        pm.lock_plan(conn, self.meta.plan_code)

    def merge(self, conn: Connection, run_id: int, result: PlanLoadResult,
              progress: Progress, issues: list[Issue]) -> dict[str, int]:
        meta = self.meta
        plan_id, result.plan_action = pm.upsert_plan(conn, meta, result.source_srid, run_id)
        progress.step(f"staging {len(self.rows):,} zones")
        pm.stage(conn, self.rows, lambda d, t: progress.update("staging", d, t))
        progress.step("checking the district's boundary")
        outside, notes = check_location(conn, STAGED, noun="zone")
        outside = [replace(i, reason=f"{i.reason} (the district of plan {meta.plan_code})")
                   for i in outside]
        if outside and not self.quarantine:
            raise Refused(outside + notes)
        if outside:
            pm.drop_zones(conn, sorted({i.feature_no for i in outside}))
        issues += outside + notes
        progress.step("merging in one transaction")
        counts = pm.merge_zones(conn, plan_id, self.codes)
        zones_changed = any(counts[k] for k in ("inserted", "updated", "removed"))
        pm.finish_plan(conn, plan_id, run_id,
                       zones_changed and result.plan_action == "unchanged")
        if counts["removed"]:
            conn.execute(text("UPDATE etl.load_run SET message = :msg WHERE run_id = :run"),
                         {"msg": f"{counts['removed']} zone(s) of plan {meta.plan_code} "
                                 "removed: not in this delivery", "run": run_id})
        result.removed = counts["removed"]
        return counts


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
    result = PlanLoadResult(file=path, mode="quarantine" if quarantine else "strict")
    loader = PlanLoader(path, metadata or {}, options, layer, encoding, mapping, progress,
                        quarantine)
    run_options = {**asdict(options), "layer": layer, "encoding": encoding,
                   "mapping": str(mapping)}
    return run_load(engine, loader, result, quarantine=quarantine, options=run_options,
                    progress=progress)


def load_sample_plans(engine: Engine, plans_dir: Path, echo: Callable[..., None]) -> bool:
    """Load the sample plans listed in ``plans_dir/manifest.json``, after the parcels.

    A delivery already loaded (same data files and sidecar) is skipped, like parcels.
    No manifest: nothing to do (the plans are an optional part of the samples).
    """
    entries = read_manifest(plans_dir)
    if entries is None:
        return True
    return load_listed(engine, [plans_dir / e["file"] for e in entries], kind=KIND,
                       label="plan ", identity=delivery_sha256, name=lambda p: p.name,
                       load=lambda p: load_plan(engine, p, progress=Progress("samples")),
                       echo=echo)


__all__ = ["KIND", "Options", "PlanLoadResult", "PlanMeta", "delivery_sha256", "load_plan",
           "load_sample_plans"]
