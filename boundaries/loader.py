"""Load a delivered boundary file: read, map, validate, reproject, stage, merge.

A boundary is a delivery like any other (domain.md: "boundaries are deliveries too"): one
file (Shapefile, GeoPackage, GeoJSON, or a .zip of one, read by ``etl.sources``) is one
load run through the ETL's one pipeline, strict (nothing loaded if any feature is
rejected) or quarantine, merged in ONE transaction into ``admin.admin_unit`` with every
version kept in ``admin.unit_boundary``. Re-loading the same file writes nothing but a
new load-run record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from boundaries import MAPPINGS
from boundaries import merge as bm
from boundaries.rules import Catalogue, Options, file_level, file_period, prepare_boundaries
from cadastre import current_units
from etl.fieldmap import FieldMapping
from etl.pipeline import Prepared, run_load
from etl.progress import Progress
from etl.report import Issue, LoadResult
from etl.rowcheck import resolve_crs
from etl.samples import load_listed, read_manifest
from etl.sources import file_sha256, open_source

KIND = "boundaries"
# Layer names a GeoPackage of several layers names its communes by.
BOUNDARY_LAYERS = ("dia_gioi_xa", "ranh_gioi_xa", "xa", "communes", "boundaries")


@dataclass
class BoundaryLoadResult(LoadResult):
    """A boundary load's result: its period, and the parents derived from their units."""

    period: str | None = None
    derived: int = 0

    def summary(self) -> str:
        if self.status != "loaded":
            return super().summary().replace(" features ", " units ")
        # Worded apart from parcels' ": loaded as run" so the two are told apart in logs.
        text_ = (f"{self.file.name}: loaded boundaries run {self.run_id}: "
                 f"{self.features_read} units ({self.period}), {self.inserted} inserted, "
                 f"{self.updated} updated, {self.unchanged} unchanged; {self.derived} "
                 "parent boundaries derived")
        if self.rejects:
            text_ += f", {self.rejected} QUARANTINED (not loaded, listed above)"
        if self.repairs:
            text_ += f", {len(self.repairs)} repaired"
        return text_

    def detail_lines(self, limit: int = 50, repair_limit: int = 5) -> list[str]:
        """The rejects and repairs, then the notes (how far districts could be derived)."""
        notes = [i.line(self.file.name) + " [note]" for i in self.notes[:limit]]
        return super().detail_lines(limit, repair_limit) + notes


class BoundaryLoader:
    """One boundary file through the pipeline (``etl.pipeline.Loader``)."""

    kind = KIND
    tables = ("admin.admin_unit", "admin.unit_boundary")  # analysed after a big load

    def __init__(self, path: Path, options: Options, layer: str | None,
                 encoding: str | None, mapping: str | Path, progress: Progress) -> None:
        self.path, self.options, self.layer, self.encoding = path, options, layer, encoding
        self.mapping, self.progress = mapping, progress

    def identity(self) -> str | None:
        return None  # the file's sha256 comes with reading it

    def prepare(self, engine: Engine, result: BoundaryLoadResult, run_options: dict
                ) -> Prepared:
        path, progress = self.path, self.progress
        progress.step(f"reading {path.name}")
        source = open_source(path, layer=self.layer, encoding=self.encoding,
                             preferred_layers=BOUNDARY_LAYERS)
        result.features_read = len(source.frame)
        crs = resolve_crs(path.name, source.crs, self.options.crs)
        result.source_srid = crs.to_2d().to_epsg(min_confidence=70)
        mapping = FieldMapping.load(self.mapping, MAPPINGS)
        columns = set(mapping.resolve([c for c in source.frame.columns
                                       if c != "geometry"])[0].values())
        level = file_level(columns, self.options, path.name)
        period = file_period(columns, level, self.options, path.name)
        result.period = self.period = period
        run_options.update(period=period, level=level)
        progress.step(f"validating {result.features_read:,} units ({crs.name}, {period})")
        with engine.connect() as conn:
            catalogue = Catalogue.load(conn, period)
        self.rows, issues = prepare_boundaries(source.frame, path.name, crs, catalogue,
                                               mapping, level)
        districts = sorted({catalogue.units[("commune", c)].parent_code
                            if lv == "commune" and period == "pre2025" else c
                            for lv, c in zip(self.rows["level"], self.rows["code"],
                                             strict=True) if lv != "province"})
        return Prepared(source.issues + issues, districts, source.sha256, source.layer)

    def lock(self, conn: Connection) -> None:
        bm.lock(conn)

    def merge(self, conn: Connection, run_id: int, result: BoundaryLoadResult,
              progress: Progress, issues: list[Issue]) -> dict[str, int]:
        progress.step(f"staging {len(self.rows):,} units")
        bm.stage(conn, self.rows)
        progress.step("merging in one transaction")
        counts, notes = bm.merge(conn, run_id, self.period)
        issues += notes
        if self.period == "2025":  # the parcels under them get their 2025 commune anew
            issues += reassign_parcels(conn, run_id)
        result.derived = counts["derived"]
        if counts["derived"]:
            conn.execute(text("UPDATE etl.load_run SET message = :msg WHERE run_id = :run"),
                         {"msg": f"{counts['derived']} parent boundaries derived from their "
                                 "units'", "run": run_id})
        return counts


def reassign_parcels(conn: Connection, run_id: int) -> list[Issue]:
    """The 2025 communes whose boundary this run delivered or changed decide their
    parcels' 2025 commune (``cadastre.current_units``); a note says how many changed."""
    units = conn.execute(text("""
        SELECT b.unit_id FROM admin.unit_boundary b
          JOIN admin.admin_unit u ON u.id = b.unit_id
         WHERE b.load_run_id = :run AND u.level = 'commune'
    """), {"run": run_id}).scalars().all()
    counts = current_units.assign_under_units(conn, list(units))
    if not counts.get("current_by_boundary") and not counts["current_units_changed"]:
        return []
    return [Issue(0, "current_commune_code",
                  f"{counts['current_units_changed']} parcels' 2025 commune changed; "
                  f"{counts.get('current_by_boundary', 0)} parcels under these boundaries "
                  "are placed by them", severity="note")]


def load_boundaries(engine: Engine, path: Path, *, options: Options | None = None,
                    quarantine: bool = False, layer: str | None = None,
                    encoding: str | None = None, mapping: str | Path = "boundaries",
                    progress: Progress | None = None) -> BoundaryLoadResult:
    """Load one boundary file; never raises for bad data, the result says what happened."""
    options = options or Options()
    progress = progress or Progress("boundaries", enabled=False)
    result = BoundaryLoadResult(file=path, mode="quarantine" if quarantine else "strict")
    loader = BoundaryLoader(path, options, layer, encoding, mapping, progress)
    run_options = {**asdict(options), "layer": layer, "encoding": encoding,
                   "mapping": str(mapping)}
    return run_load(engine, loader, result, quarantine=quarantine, options=run_options,
                    progress=progress)


def load_sample_boundaries(engine: Engine, folder: Path, echo: Callable[..., None]) -> bool:
    """Load the sample boundary files listed in ``folder/manifest.json`` (before the
    parcels, which are checked against them); a file already loaded is skipped."""
    entries = read_manifest(folder)
    if entries is None:
        return True
    return load_listed(engine, [(folder / e["file"], e.get("period")) for e in entries],
                       kind=KIND, label="boundaries ", identity=lambda d: file_sha256(d[0]),
                       name=lambda d: d[0].name,
                       load=lambda d: load_boundaries(engine, d[0],
                                                      options=Options(period=d[1]),
                                                      progress=Progress("samples")),
                       echo=echo)
