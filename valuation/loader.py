"""Load a provincial land price table: workbook or CSV + sidecar (+ segment and zone
geometries), validated, in one transaction, recorded like every load.

The pattern of ``cadastre.loader``: read, map columns (``valuation/mappings/prices.yaml``), validate
every row and feature, then either record a rejected run (strict mode, any reject: nothing
changes) or stage with COPY and merge with SQL in one transaction under an advisory lock on
the table code, recording the run (``etl.load_run`` kind 'price_table') and every reject,
repair and note (``etl.load_reject``). Re-loading the same delivery writes nothing but a
new load-run record.

Reject records: ``feature_no`` is the row number in the sheet (or the feature number in a
geometry file) and ``field`` is ``"<sheet>!<column heading>"`` (``"<file>!<field>"`` for
geometry files), e.g. ``Đất ở đô thị!VT2``; the reason names the cell. Notes (loaded, but
worth knowing, e.g. a priced segment without geometry) are stored with "[note]" prefixed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
import yaml
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from cadastre.reference import Reference
from etl.fieldmap import FieldMapping, normalise_name
from etl.pipeline import Prepared, run_load
from etl.progress import Progress
from etl.report import Issue, LoadError, LoadResult
from etl.samples import load_listed, read_manifest
from etl.sheets import read_csv, read_workbook
from etl.sources import dataset_files, file_sha256
from valuation import MAPPINGS
from valuation import merge as pm
from valuation.features import Extents, Features, prepare_segments, prepare_zones
from valuation.meta import DEFAULT_RULES, TableMeta, find_sidecar, read_sidecar, table_meta
from valuation.rules import Context, ParsedTable, parse_sheets, segment_attributes

KIND = "price_table"
MAPPING = "prices"
DISTRICT_PREFIXES = ("Quận ", "Huyện ", "Thị xã ", "Thành phố ")


@dataclass
class PriceLoadResult(LoadResult):
    """A load result that names the table and counts per kind of content."""

    table_code: str | None = None
    table_version: int | None = None
    table_changed: bool = False
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        """Rows/features rejected (a row number is only unique within its sheet)."""
        return len({(i.field.split("!", 1)[0], i.feature_no) for i in self.rejects})

    def summary(self) -> str:
        name = self.file.name
        if self.status != "loaded":
            return super().summary().replace(" features ", " rows/features ")
        parts = ", ".join(
            f"{kind} +{c.get('inserted', 0)} ~{c.get('updated', 0)} ={c.get('unchanged', 0)}"
            f" -{c.get('removed', 0)}" for kind, c in self.counts.items())
        state = (f"version {self.table_version}" + (" (changed)" if self.table_changed
                                                     else " (unchanged)"))
        out = (f"{name}: price table {self.table_code} {state}: loaded price run "
               f"{self.run_id}: {self.features_read} rows/features read; {parts}")
        if self.rejects:
            out += f"; {self.rejected} QUARANTINED (not loaded, listed above)"
        if self.notes:
            out += f"; {len(self.notes)} note(s)"
        return out

    def detail_lines(self, limit: int = 50, repair_limit: int = 5) -> list[str]:
        def line(i: Issue) -> str:
            where, _, column = i.field.partition("!")
            unit = "feature" if "." in where and column and where.lower().endswith(
                (".gpkg", ".shp", ".geojson")) else "row"
            value = f" (value: {i.value!r})" if i.value not in (None, "") else ""
            return f"{self.file.name}: {where!r} {unit} {i.feature_no} column {column}: " \
                   f"{i.reason}{value}"
        lines = [line(i) for i in self.rejects[:limit]]
        if len(self.rejects) > limit:
            lines.append(f"... and {len(self.rejects) - limit} more rejected "
                         "(write them all with --report)")
        extra = self.repairs + self.notes
        lines += [line(i) + f" [{i.severity}]" for i in extra[:repair_limit]]
        if len(extra) > repair_limit:
            lines.append(f"... and {len(extra) - repair_limit} more repairs/notes "
                         "(write them all with --report)")
        return lines


def delivery_parts(path: Path, segments: Path | None, zones: Path | None) -> list[Path]:
    """The files that make one delivery (the sidecar and geometry files count)."""
    parts = [p for p in (find_sidecar(path),) if p]
    for extra in (segments, zones):
        if extra is not None:
            parts += dataset_files(extra)
    return parts


def delivery_sha256(path: Path, segments: Path | None = None, zones: Path | None = None
                    ) -> str:
    return file_sha256(path, extra=delivery_parts(path, segments, zones))


COMMUNE_PREFIXES = ("Phường ", "Xã ", "Thị trấn ", "Đặc khu ")


def load_context(conn: Connection, province: str, ref: Reference,
                 on: date | None = None) -> tuple[Context, Extents]:
    """Districts (by normalised name), communes and extents of the table's province.

    Commune names (for section rows) are those of the units valid on the table's first
    day ``on``: a 2026 table's "PHƯỜNG BA ĐÌNH" is the 2025 ward 00004, not a pre-2025 one.
    """
    districts: dict[str, str] = {}
    for code, name in conn.execute(text("""
            SELECT code, name FROM admin.admin_unit
             WHERE level = 'district' AND parent_code = :p AND valid_to = DATE '2025-06-30'
        """), {"p": province}):
        districts[normalise_name(name)] = code
        for prefix in DISTRICT_PREFIXES:
            if name.startswith(prefix):
                districts[normalise_name(name.removeprefix(prefix))] = code
    communes = {c for c, v in ref.communes.items() if v.province_code == province}
    communes |= set(conn.execute(text("""
        SELECT code FROM admin.admin_unit
         WHERE level = 'commune' AND valid_to IS NULL
           AND parent_code = :p
    """), {"p": province}).scalars())
    land_types = set(conn.execute(text("SELECT code FROM valuation.land_type")).scalars())
    commune_names: dict[str, str] = {}
    for code, name in conn.execute(text("""
            SELECT c.code, c.name FROM admin.admin_unit c
              LEFT JOIN admin.admin_unit d ON d.level = 'district' AND d.code = c.parent_code
                                          AND d.valid_to = DATE '2025-06-30'
             WHERE c.level = 'commune'
               AND (c.parent_code = :p OR d.parent_code = :p)
               AND (c.valid_from IS NULL OR c.valid_from <= :on)
               AND (c.valid_to IS NULL OR c.valid_to >= :on)
             ORDER BY c.code
        """), {"p": province, "on": on or date.today()}):
        commune_names.setdefault(normalise_name(name), code)
        for prefix in COMMUNE_PREFIXES:
            if name.startswith(prefix):
                commune_names.setdefault(normalise_name(name.removeprefix(prefix)), code)
    codes = set(districts.values())
    extents = Extents({d: b for d, b in ref.district_extents.items() if d in codes})
    return Context(province, districts, communes, land_types, commune_names), extents


def _frames(parsed: ParsedTable, seg_features: Features | None, zones: Features | None
            ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    segs = segment_attributes(parsed.segments)
    geo = seg_features.by_key if seg_features else {}
    seg_rows = [{"segment_key": k, "road_name": s.road_name, "from_desc": s.from_desc,
                 "to_desc": s.to_desc, "road_class": s.road_class,
                 "district_code": s.district_code or geo.get(k, {}).get("district_code"),
                 "source_row": f"{s.sheet}!{s.row}", "wkb": geo.get(k, {}).get("wkb"),
                 "kind": s.kind, "commune_code": s.commune_code, "width_min_m": s.width_min_m,
                 "width_max_m": s.width_max_m, "section": s.section,
                 "segment_text": s.segment_text}
                for k, s in sorted(segs.items())]
    rates = [{"land_type": s.land_type, "segment_key": s.key, "area_class": None,
              "position": p, "vnd_per_m2": v}
             for s in parsed.segments for p, v in enumerate(s.prices, start=1)]
    rates += [{"land_type": a.land_type, "segment_key": None, "area_class": a.area_class,
               "position": p, "vnd_per_m2": v}
              for a in parsed.areas for p, v in enumerate(a.prices, start=1)]
    zone_frame = None
    if zones is not None:
        zone_frame = pd.DataFrame(
            [{"zone_code": code, "land_type": z["land_type"], "vnd_per_m2": z["price"],
              "standard_parcel_ref": z["standard_parcel"], "district_code": z["district_code"],
              "wkb": z["wkb"]} for code, z in sorted(zones.by_key.items())],
            columns=["zone_code", "land_type", "vnd_per_m2", "standard_parcel_ref",
                     "district_code", "wkb"], dtype=object)
    seg_frame = pd.DataFrame(seg_rows, columns=["segment_key", "road_name", "from_desc",
                                                "to_desc", "road_class", "district_code",
                                                "source_row", "wkb", "kind", "commune_code",
                                                "width_min_m", "width_max_m", "section",
                                                "segment_text"], dtype=object)
    rate_frame = pd.DataFrame(rates, columns=["land_type", "segment_key", "area_class",
                                              "position", "vnd_per_m2"], dtype=object)
    return seg_frame, rate_frame, zone_frame


def _missing_geometry_notes(parsed: ParsedTable, features: Features, file: str) -> list[Issue]:
    notes = []
    for key, seg in sorted(segment_attributes(parsed.segments).items()):
        if seg.kind == "road" and key not in features.by_key:
            notes.append(Issue(seg.row, f"{seg.sheet}!geometry",
                               f"no geometry for this segment in {file}: its rates are loaded "
                               "but price no parcel until a geometry is delivered",
                               f"{seg.road_name} | {seg.from_desc or ''} | {seg.to_desc or ''}",
                               severity="note"))
    return notes


def _check_coefficients(meta: TableMeta, ctx: Context, file: str) -> None:
    wrong = sorted({c["district_code"] for c in meta.coefficients or []
                    if c["district_code"] and c["district_code"] not in set(
                        ctx.districts.values())})
    if wrong:
        raise LoadError(file, f"coefficients: district(s) {', '.join(wrong)} not in province "
                              f"{meta.province_code}")
    wrong = sorted({c["commune_code"] for c in meta.coefficients or []
                    if c["commune_code"] and c["commune_code"] not in ctx.communes})
    if wrong:
        raise LoadError(file, f"coefficients: commune(s) {', '.join(wrong)} not in province "
                              f"{meta.province_code}")


def _check_table_key(conn: Connection, meta: TableMeta, file: str) -> None:
    """A table code names one province's table for good: a delivery re-using the code of
    another province's table is a mistake (it would replace that table), not an update."""
    loaded = conn.execute(text("SELECT province_code FROM valuation.price_table "
                               "WHERE table_code = :code"), {"code": meta.table_code}).scalar()
    if loaded is not None and loaded != meta.province_code:
        raise LoadError(file, f"table_code {meta.table_code} is already loaded for province "
                              f"{loaded}; this delivery is for province "
                              f"{meta.province_code}: use a new table code")


class PriceLoader:
    """One price-table delivery through the pipeline (``etl.pipeline.Loader``)."""

    kind = KIND
    tables = ("valuation.price_rate", "valuation.price_segment",
              "valuation.price_area_class")  # analysed after a big load

    def __init__(self, path: Path, segments: Path | None, zones: Path | None,
                 table_code: str | None, quarantine: bool, layer: str | None,
                 crs: str | None, encoding: str | None, progress: Progress) -> None:
        self.path, self.segments, self.zones, self.table_code = path, segments, zones, \
            table_code
        self.quarantine, self.layer, self.crs, self.encoding = quarantine, layer, crs, encoding
        self.progress = progress

    def identity(self) -> str | None:
        for part in (self.path, self.segments, self.zones):
            if part is not None and not part.exists():
                raise LoadError(part, "file not found")
        self.sha = delivery_sha256(self.path, self.segments, self.zones)
        return self.sha

    def prepare(self, engine: Engine, result: PriceLoadResult, run_options: dict
                ) -> Prepared:
        path, segments, zones, progress = self.path, self.segments, self.zones, self.progress
        layer, crs, encoding = self.layer, self.crs, self.encoding
        sidecar_path = find_sidecar(path)
        if sidecar_path is None:
            raise LoadError(path, f"no sidecar {path.with_suffix('.prices.yaml').name} naming "
                                  "the table (table_code, province_code, instrument, "
                                  "effective_from, sheets)")
        run_options["sidecar"] = sidecar_path.name
        is_csv = path.suffix.lower() == ".csv"
        with engine.connect() as conn:
            ref = Reference.load(conn)
            provinces = set(conn.execute(text(
                "SELECT DISTINCT code FROM admin.admin_unit WHERE level = 'province'")).scalars())
            land_types = set(conn.execute(text(
                "SELECT code FROM valuation.land_type")).scalars())
            base = FieldMapping.load(MAPPING, MAPPINGS)
            meta = table_meta(path.name, read_sidecar(sidecar_path, path.name),
                              {"table_code": self.table_code}, provinces, land_types, is_csv,
                              base.names(), _roles())
            ctx, extents = load_context(conn, meta.province_code, ref, meta.effective_from)
            _check_table_key(conn, meta, path.name)
        result.table_code = meta.table_code
        run_options["table"] = meta.as_json()
        _check_coefficients(meta, ctx, path.name)
        progress.step(f"reading {path.name} (table {meta.table_code})")
        grids = {path.name: read_csv(path)} if is_csv else read_workbook(path)
        mapping = base.extended(meta.columns, meta.replace)
        parsed = parse_sheets(grids, meta.sheets, mapping, meta.roles, ctx, path.name)
        result.features_read = parsed.rows_read
        issues = [n for g in grids.values() for n in g.notes] + list(parsed.issues)
        priced = {k for _, k in parsed.kept_segment_keys}
        epsg = ref.province_epsg.get(meta.province_code)
        seg_features = zone_features = None
        if segments is not None:
            progress.step(f"reading segment geometries {segments.name}")
            seg_features = prepare_segments(segments, ctx, priced, epsg, extents,
                                            layer=layer, crs=crs, encoding=encoding)
            result.features_read += seg_features.read
            result.source_srid = seg_features.srid
            issues += seg_features.issues
            issues += _missing_geometry_notes(parsed, seg_features, segments.name)
        if zones is not None:
            progress.step(f"reading value zones {zones.name}")
            zone_features = prepare_zones(zones, ctx, extents, crs=crs, encoding=encoding)
            result.features_read += zone_features.read
            issues += zone_features.issues
        self.meta, self.parsed = meta, parsed
        self.seg_features, self.zone_features = seg_features, zone_features
        districts = sorted({s.district_code for s in parsed.segments if s.district_code}
                           | {f["district_code"] for f in (seg_features.by_key.values()
                                                           if seg_features else [])
                              if f["district_code"]})
        order = {"reject": 0, "repair": 1, "note": 2}  # as the ledger has always listed them
        return Prepared(sorted(issues, key=lambda i: order.get(i.severity, 3)), districts,
                        self.sha, layer)

    def lock(self, conn: Connection) -> None:
        pm.lock_table(conn, self.meta.table_code)

    def merge(self, conn: Connection, run_id: int, result: PriceLoadResult,
              progress: Progress, issues: list[Issue]) -> dict[str, int]:
        meta, parsed = self.meta, self.parsed
        seg_frame, rate_frame, zone_frame = _frames(parsed, self.seg_features,
                                                    self.zone_features)
        keep = [(lt, k, None) for lt, k in sorted(parsed.kept_segment_keys)]
        keep += [(lt, None, a) for lt, a in sorted(parsed.kept_area_keys)]
        progress.step(f"staging {len(rate_frame):,} rates, {len(seg_frame):,} segments")
        table_id = pm.upsert_table(conn, meta, run_id)
        pm.stage(conn, segments=seg_frame, rates=rate_frame, scopes=parsed.scopes, keep=keep,
                 classes=[(c.commune_code, c.area_class) for c in parsed.classes],
                 keep_communes=parsed.kept_communes if self.quarantine else set(),
                 zones=zone_frame)
        progress.step("merging in one transaction")
        rules = None
        if meta.rules is not None or pm.default_rules_needed(conn, table_id):
            rules = {**DEFAULT_RULES, **(meta.rules or {})}
        result.counts = pm.merge(conn, table_id, meta, rules,
                                 classes_given=parsed.has_classes,
                                 zones_given=self.zone_features is not None)
        result.table_version, result.table_changed = pm.finish_table(conn, table_id, run_id)
        conn.execute(text("UPDATE etl.load_run SET message = :msg WHERE run_id = :run"),
                     {"msg": json.dumps({"table_code": meta.table_code,
                                         "table_version": result.table_version,
                                         "changed": result.table_changed,
                                         "counts": result.counts}), "run": run_id})
        return {k: sum(c.get(k, 0) for c in result.counts.values())
                for k in ("inserted", "updated", "unchanged")}


def load_prices(engine: Engine, path: Path, *, segments: Path | None = None,
                zones: Path | None = None, table_code: str | None = None,
                quarantine: bool = False, layer: str | None = None, crs: str | None = None,
                encoding: str | None = None, progress: Progress | None = None
                ) -> PriceLoadResult:
    """Load one price-table delivery; never raises for bad data, the result says what
    happened. ``encoding``: code page of geometry .dbf files without a .cpg."""
    progress = progress or Progress("prices", enabled=False)
    result = PriceLoadResult(file=path, mode="quarantine" if quarantine else "strict")
    loader = PriceLoader(path, segments, zones, table_code, quarantine, layer, crs, encoding,
                         progress)
    run_options: dict = {"segments": str(segments) if segments else None,
                         "zones": str(zones) if zones else None, "layer": layer, "crs": crs,
                         "encoding": encoding, "mapping": MAPPING}
    return run_load(engine, loader, result, quarantine=quarantine, options=run_options,
                    progress=progress)


def _roles() -> dict[str, list[str]]:
    doc = yaml.safe_load((MAPPINGS / f"{MAPPING}.yaml").read_text(encoding="utf-8"))
    return {role: list(fields) for role, fields in doc["roles"].items()}


def load_sample_prices(engine: Engine, prices_dir: Path, echo: Callable[..., None]) -> bool:
    """Load the sample price tables listed in ``prices_dir/manifest.json`` (after parcels).

    A delivery already loaded (same workbook, sidecar and geometry files) is skipped.
    No manifest: nothing to do.
    """
    manifest = read_manifest(prices_dir)
    if manifest is None:
        return True

    def parts(entry: dict) -> tuple[Path, Path | None, Path | None]:
        return (prices_dir / entry["file"],
                prices_dir / entry["segments"] if entry.get("segments") else None,
                prices_dir / entry["zones"] if entry.get("zones") else None)

    deliveries = [parts(e) for e in manifest["deliveries"]]
    return load_listed(
        engine, deliveries, kind=KIND, label="price table ",
        identity=lambda d: delivery_sha256(*d), name=lambda d: d[0].name,
        load=lambda d: load_prices(engine, d[0], segments=d[1], zones=d[2],
                                   progress=Progress("samples")), echo=echo)


__all__ = ["KIND", "PriceLoadResult", "delivery_sha256", "load_prices", "load_sample_prices"]
