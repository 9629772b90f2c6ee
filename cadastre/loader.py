"""Load delivered cadastral parcel files: read, map, validate, reproject, stage, merge.

A file is read, validated and staged a batch at a time (its size does not bound the
memory a load needs); one file is one load run and one transaction, through the ETL's one pipeline
(``etl.pipeline``): strict mode (the default) loads nothing if any feature is rejected;
``quarantine`` loads the good rows and records the bad ones. Re-loading the same file
changes no data: rows are matched by their natural key (commune, sheet, parcel number) and
only real differences are written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd
from pyproj import CRS
from sqlalchemy.engine import Connection, Engine

from cadastre import MAPPINGS, current_units
from cadastre import holders as hd
from cadastre import merge as m
from cadastre.location import check_location
from cadastre.reference import Reference
from cadastre.rules import DELIVERIES, Options, check_batch, parse_scale
from etl.actor import Actor
from etl.fieldmap import FieldMapping
from etl.pipeline import Prepared, Refused, run_load
from etl.progress import Progress
from etl.report import Issue, LoadError, LoadResult
from etl.rowcheck import resolve_crs
from etl.samples import load_listed, read_manifest
from etl.sidecar import find_sidecar, read_sidecar
from etl.sources import BATCH_FEATURES, Stream, file_sha256, open_stream
from etl.staging import pipelined

KIND = "parcels"
# Layer names a cadastral GeoPackage of several layers names its parcels by.
PARCEL_LAYERS = ("thua_dat", "thuadat", "parcels", "parcel")
SIDECAR = ".parcels.yaml"  # what a delivery says about itself (see delivery_options)
SIDECAR_KEYS = {"delivery", "scale", "sheet_scales"}
# What the location check reads of the stage (``cadastre.location``).
STAGED = "SELECT feature_no, district_code, commune_code, geom FROM stage_parcel"


@dataclass
class ParcelLoadResult(LoadResult):
    """A parcel load's result, with what it retired and linked."""

    delivery: str = "changes"
    retired: int = 0
    lineage: int = 0
    first_load: bool = False  # merged into partitions built apart (``partitions``)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step

    def summary(self) -> str:
        text_ = super().summary()
        if self.status == "loaded" and (self.retired or self.lineage):
            text_ += f"; {self.retired} retired, {self.lineage} parent -> child links"
        if self.status == "loaded" and self.first_load:
            text_ += "; a first load: its provinces' partitions built apart and attached"
        return text_


def delivery_sha256(path: Path) -> str:
    """A delivery's identity: its files, its sidecar and its holders file (a changed
    scale, kind of delivery or holder is a new delivery)."""
    extra = [p for p in (find_sidecar(path, SIDECAR), hd.holders_path(path)) if p]
    return file_sha256(path, extra=extra)


def delivery_options(path: Path, given: Options) -> tuple[Options, Path | None]:
    """The options of a delivery: what the command line gave, else what its sidecar
    (``<file>.parcels.yaml``: ``delivery: changes|resurvey``, ``scale: 500``,
    ``sheet_scales: {12: 1000}``) says, else the defaults."""
    sidecar_path = find_sidecar(path, SIDECAR)
    doc = read_sidecar(sidecar_path, path.name, SIDECAR_KEYS, "parcel delivery")
    delivery = given.delivery or doc.get("delivery") or "changes"
    if delivery not in DELIVERIES:
        raise LoadError(path, f"delivery must be one of {', '.join(DELIVERIES)}, not "
                              f"{delivery!r}")
    try:
        scale = given.scale or (parse_scale(doc["scale"]) if doc.get("scale") else None)
        sheets = {int(k): parse_scale(v) for k, v in (doc.get("sheet_scales") or {}).items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise LoadError(path, f"{sidecar_path.name if sidecar_path else 'scale'}: {exc}") \
            from None
    return replace(given, delivery=delivery, scale=scale,
                   sheet_scales={**sheets, **given.sheet_scales}), sidecar_path


class ParcelLoader:
    """One parcel file through the pipeline (``etl.pipeline.Loader``), streamed.

    ``prepare`` opens the file and makes every whole-file check (archive, parts, text
    encoding, layer, CRS, fields) without reading a feature. ``merge`` reads, validates
    and stages it a batch at a time (a producer thread validates and formats the next
    batch while the connection sends this one), so memory is bounded by the batch, not
    the file; then the rules that need the whole file run on the stage in SQL (duplicate
    keys, location, overlaps) and the merge follows. Strict mode refuses the file if
    anything was refused (the transaction rolls back); quarantine leaves those rows out.
    """

    kind = KIND
    tables = ("cadastre.parcel", "cadastre.parcel_land_use", "cadastre.parcel_history",
              "cadastre.parcel_event", "cadastre.parcel_lineage", "cadastre.map_sheet",
              "restricted.land_right", "restricted.party")  # analysed after a big load

    def __init__(self, path: Path, options: Options, layer: str | None,
                 encoding: str | None, mapping: str | Path,
                 only_districts: set[str] | None, quarantine: bool,
                 progress: Progress, batch_features: int = BATCH_FEATURES,
                 only_commune: str | None = None) -> None:
        self.path, self.options, self.layer, self.encoding = path, options, layer, encoding
        self.mapping, self.only_districts, self.progress = mapping, only_districts, progress
        self.quarantine, self.batch_features = quarantine, batch_features
        self.only_commune = only_commune
        self.holders: hd.HoldersFile | None = None
        self.stream: Stream | None = None
        self.crs: CRS | None = None
        self.ref: Reference | None = None
        self.fields: FieldMapping | None = None
        self.districts: list[str] = []
        self.timings: dict[str, float] = {}  # seconds per step (bench.load reports them)

    def identity(self) -> str | None:
        return None  # the file's sha256 comes with opening it (or from the failure record)

    def prepare(self, engine: Engine, result: ParcelLoadResult, run_options: dict
                ) -> Prepared:
        path, progress = self.path, self.progress
        self.options, sidecar = delivery_options(path, self.options)
        result.delivery = self.options.delivery
        holders = hd.holders_path(path)
        run_options.update(delivery=self.options.delivery, scale=self.options.scale,
                           sheet_scales=self.options.sheet_scales,
                           sidecar=sidecar.name if sidecar else None,
                           holders=holders.name if holders else None)
        progress.step(f"opening {path.name}")
        self.stream = stream = open_stream(path, layer=self.layer, encoding=self.encoding,
                                           preferred_layers=PARCEL_LAYERS,
                                           batch_features=self.batch_features)
        result.features_read = stream.features
        self.crs = resolve_crs(path.name, stream.crs, self.options.crs)
        result.source_srid = self.crs.to_2d().to_epsg(min_confidence=70)
        self.fields = FieldMapping.load(self.mapping, MAPPINGS)
        # A required field missing is a whole-file problem: found before the transaction.
        self.fields.select(pd.DataFrame(columns=stream.fields), path.name)
        if holders is not None:  # the same for the holders file: its header, its text
            self.holders = hd.HoldersFile.open(holders)
        with engine.connect() as conn:
            self.ref = Reference.load(conn)
        # with a sidecar or a holders file the delivery's identity covers them (the data
        # files' hash alone is what opening them already gave)
        return Prepared(list(stream.issues), [],
                        delivery_sha256(path) if sidecar or holders else stream.sha256,
                        stream.layer)

    def lock(self, conn: Connection) -> None:
        """Nothing yet: the districts are known once the file is staged (``merge`` locks
        them then, before anything reads the cadastre)."""

    def _checked(self) -> Iterator[tuple[int, list, list, list[Issue], set[str]]]:
        """The producer's work, batch by batch: read, validate, restrict to the allowed
        districts, format as COPY text. (features done, rows' text, parents' text,
        issues, districts)."""
        stream = self.stream
        batches = stream.batches()
        while True:
            started = time.perf_counter()
            batch = next(batches, None)
            self._add("reading", time.perf_counter() - started)
            if batch is None:
                return
            done, frame, whole_file = batch
            started = time.perf_counter()
            rows, issues, parents = check_batch(frame, stream.path.name, self.crs, self.ref,
                                                self.fields, self.options, done + 1)
            del frame
            if self.only_districts is not None:
                outside = restrict_districts(rows, self.only_districts)
                issues += outside
                refused = rows["feature_no"].isin([i.feature_no for i in outside])
                rows.loc[refused, "rejected"] = True
                parents = parents[~parents["feature_no"].isin(rows.loc[refused,
                                                                       "feature_no"])]
            kept = rows.loc[~rows["rejected"], "district_code"]
            districts = set(kept.dropna().unique().tolist())
            text_rows, text_parents = m.format_batch(rows, parents)
            self._add("validating", time.perf_counter() - started)
            yield done + len(rows), text_rows, text_parents, whole_file + issues, districts

    def _add(self, step: str, seconds: float) -> None:
        self.timings[step] = self.timings.get(step, 0.0) + seconds

    def merge(self, conn: Connection, run_id: int, result: ParcelLoadResult,
              progress: Progress, issues: list[Issue]) -> dict[str, int]:
        total = result.features_read
        progress.step(f"validating and staging {total:,} features ({self.crs.name})")
        m.begin_stage(conn)
        checked: list[Issue] = []
        districts: set[str] = set()
        for done, text_rows, text_parents, found, batch_districts in pipelined(
                self._checked()):
            started = time.perf_counter()
            m.stage_batch(conn, text_rows, text_parents)
            self._add("staging", time.perf_counter() - started)
            checked += found
            districts |= batch_districts
            progress.update("validating and staging", done, total)
        if self.holders is not None:
            progress.step(f"checking the holders in {self.holders.path.name}")
            started = time.perf_counter()
            lines = hd.stage(conn, self.holders) + hd.whole_file_rules(conn)
            checked += hd.located(conn, lines, self.holders.path.name)
            self._add("holders", time.perf_counter() - started)
        started = time.perf_counter()
        checked += duplicate_issues(m.duplicate_keys(conn))
        checked += [Issue(no, "certificate_serial", why)
                    for no, why in m.certificate_conflicts(conn)]
        rejects = {i.feature_no for i in checked if i.severity == "reject"}
        self._add("duplicate keys", time.perf_counter() - started)
        self.districts = sorted(districts)
        result.districts = self.districts  # recorded with the run, loaded or rejected
        if rejects and not self.quarantine:
            raise Refused(checked)  # nothing is merged; every issue of the file is listed
        issues += checked
        if rejects:
            m.drop_rejected(conn, sorted(rejects))
        m.finish_stage(conn)
        m.lock_districts(conn, self.districts)
        progress.step("checking districts' and communes' boundaries")
        started = time.perf_counter()
        outside, notes = check_location(conn, STAGED)
        if outside and self.quarantine:
            m.drop_features(conn, sorted({i.feature_no for i in outside}))
        self._add("location", time.perf_counter() - started)
        if self.only_commune is not None:  # a commune officer's load: their parcels only
            # The 2025 units are decided on the stage here, and again by the merge (for
            # what is left after a quarantine): an officer's file is small.
            current_units.assign_stage(conn)
            scope = commune_issues(m.outside_commune(conn, self.only_commune,
                                                     self.options.delivery),
                                   self.only_commune)
            if scope and (not self.quarantine or any(i.feature_no == 0 for i in scope)):
                raise Refused(outside + notes + scope)  # a re-survey's is the whole file's
            if scope:
                m.drop_features(conn, sorted({i.feature_no for i in scope}))
            notes += scope
        progress.step("checking overlaps with current parcels")
        started = time.perf_counter()
        found = outside + notes + overlap_issues(m.overlaps(conn, self.options.delivery))
        self._add("overlaps", time.perf_counter() - started)
        rejects_db = [i for i in found if i.severity == "reject"]
        if rejects_db and not self.quarantine:
            raise Refused(found)
        if rejects_db:
            m.drop_features(conn, sorted({i.feature_no for i in rejects_db}))
        issues += found
        progress.step("merging in one transaction")
        started = time.perf_counter()
        counts = m.merge(conn, run_id, self.options.delivery)
        issues += [Issue(no, "old_parcel_no", f"old number {ref} is not a current parcel: "
                         "no parent linked", ref, severity="note")
                   for no, ref in m.unknown_parents(conn)]
        self._add("merging", time.perf_counter() - started)
        result.retired, result.lineage = counts["retired"], counts["lineage"]
        result.first_load = bool(counts.get("first_load"))
        result.timings = {k: round(v, 2) for k, v in self.timings.items()}
        progress.step("seconds per step (reading and validating run beside staging): "
                      + ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items()))
        return counts


def duplicate_issues(rows: list[tuple[int, str, int, int, list[int]]]) -> list[Issue]:
    """A reject for every copy of a key the file holds more than once (which is right?)."""
    return [Issue(no, "parcel_no", f"duplicate key commune {commune} sheet {sheet} parcel "
                  f"{parcel} (also feature {', '.join(str(o) for o in others)})")
            for no, commune, sheet, parcel, others in rows]


def commune_issues(rows: list[tuple[int, str, str | None, str]], commune: str
                   ) -> list[Issue]:
    """A located reject for each parcel a commune officer's load would write or retire
    outside their 2025 commune (``merge.outside_commune``), naming it and where it lies;
    feature 0: a re-survey that would retire parcels of other communes."""
    out = []
    for no, ref, lies_in, what in rows:
        where = (f"lies in commune {lies_in} since the 2025 reform" if lies_in else
                 "has no known 2025 commune (its old commune was split and no 2025 "
                 "boundary decides)")
        subject = {"staged": f"parcel {ref} {where}",
                   "current": f"parcel {ref} as it stands {where}",
                   "parent": f"its parent {ref} (by its old number) {where}",
                   "resurvey": "a re-survey retires every parcel of its communes it does "
                               f"not carry, and {ref} lie outside commune {commune}"}[what]
        out.append(Issue(no, "commune_code", f"{subject}: this load is for commune "
                         f"{commune} only", lies_in))
    return out


def overlap_issues(rows: list[tuple[int, str, float, float, bool]]) -> list[Issue]:
    """A located issue per overlap, naming both parcels and the overlap: a reject within
    the district (a delivery cannot lay parcels over others of its own district); a note
    across a district boundary (where the districts' own surveys disagree, which no
    parcel delivery settles: see docs/ARCHITECTURE.md, "Topology")."""
    out = []
    for no, other, overlap, tolerance, same_district in rows:
        what = (f"overlaps current parcel {other} by {overlap:,.2f} m² (more than the "
                f"{tolerance:,.2f} m² the survey's accuracy allows)")
        if same_district:
            out.append(Issue(no, "geometry", f"{what}; a delivery that replaces it names it "
                             "by its old number (SoThuTuThuaCu) or is a re-survey of the "
                             "commune", other))
        else:
            out.append(Issue(no, "geometry", f"{what}, a parcel of another district: the "
                             "two districts' surveys disagree at their boundary", other,
                             severity="note"))
    return out


def load_parcels(engine: Engine, path: Path, *, options: Options | None = None,
                 quarantine: bool = False, layer: str | None = None,
                 encoding: str | None = None, mapping: str | Path = "parcels",
                 progress: Progress | None = None, only_districts: set[str] | None = None,
                 actor: Actor | None = None, name: str | None = None,
                 batch_features: int = BATCH_FEATURES,
                 only_commune: str | None = None) -> ParcelLoadResult:
    """Load one file; never raises for bad data, the result says what happened.

    ``only_districts`` (an API load for one district): a feature whose commune lies in any
    other district is rejected, located, before anything is merged, so strict mode refuses
    the file and quarantine leaves those features out. ``actor``: who the load is for (the
    run's ``run_by`` and the audit row), when not the operator at the shell. ``name``: the
    file's name as delivered (an upload's), recorded instead of the server's path.
    ``batch_features``: features read, validated and staged at a time.
    ``only_commune`` (a commune officer's load): every parcel it writes or retires must lie
    in that 2025 commune, decided on the stage (``cadastre.current_units``); the others
    are rejected, located (strict: the file is refused; quarantine: left out).
    A holders file beside ``path`` (``<stem>.chu_su_dung.csv``) is read with it.
    """
    options = options or Options()
    progress = progress or Progress("load", enabled=False)
    result = ParcelLoadResult(file=path, mode="quarantine" if quarantine else "strict",
                              name=name)
    loader = ParcelLoader(path, options, layer, encoding, mapping, only_districts, quarantine,
                          progress, batch_features, only_commune)
    run_options = {**asdict(options), "layer": layer, "encoding": encoding,
                   "mapping": str(mapping)}
    return run_load(engine, loader, result, quarantine=quarantine, options=run_options,
                    progress=progress, actor=actor)


def restrict_districts(rows: pd.DataFrame, allowed: set[str]) -> list[Issue]:
    """A located reject for each row whose commune lies outside the ``allowed``
    districts: a load for one district must not touch another's parcels, whoever sends
    it."""
    outside = rows["district_code"].notna() & ~rows["district_code"].isin(allowed)
    wanted = ", ".join(sorted(allowed))
    return [Issue(int(r.feature_no), "commune_code",
                  f"commune {r.commune_code} lies in district {r.district_code}, not "
                  f"{wanted}: this load is for {wanted} only", r.commune_code)
            for r in rows.loc[outside, ["feature_no", "commune_code", "district_code"]]
            .itertuples(index=False)]


def load_sample_parcels(engine: Engine, samples_dir: Path, echo: Callable[..., None]) -> bool:
    """Load the sample parcel files listed in ``samples_dir/manifest.json``; a file already
    loaded unchanged is skipped."""
    manifest = read_manifest(samples_dir)
    if manifest is None:
        return True
    entries = manifest["files"] if isinstance(manifest, dict) else manifest
    return load_listed(engine, [samples_dir / e["file"] for e in entries], kind=KIND,
                       label="", identity=delivery_sha256, name=lambda p: p.name,
                       load=lambda p: load_parcels(engine, p, progress=Progress("samples")),
                       echo=echo)
