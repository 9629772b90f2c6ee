"""Facts of a parcel's site the valuation reads, delivered as data: the width of the alley
(ngõ, kiệt, hẻm) the parcel is reached by, which sets its position (rule
``position_width``), and its height difference to the road (rule ``height_difference``).

A land office measures these per parcel; the cadastre's files do not carry them. A CSV
names each parcel by its national key and gives the facts (headings in
``valuation/mappings/parcel_sites.yaml``: ``MaXa, SoHieuToBanDo, SoThuTuThua,
BeRongNgo, ChenhLechCao, GhiChu`` or their Vietnamese / snake_case forms). All or nothing:
a row naming no current parcel, a number that is not a positive width (or a plausible
height), or a parcel given twice refuses the file, every problem named with its line. A
value left empty keeps what was recorded; re-loading the same file changes nothing. The
load is recorded in the ledger (kind ``parcel_sites``).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from etl import ledger
from etl.fieldmap import FieldMapping
from etl.samples import read_manifest
from etl.values import is_blank, parse_code, parse_number
from valuation import MAPPINGS

KIND = "parcel_sites"
MAX_ALLEY_M = 60.0  # wider is a road, not an alley: a typo in metres or centimetres
MAX_HEIGHT_M = 50.0


class SitesError(ValueError):
    """The file is refused; ``problems`` are its rows' reasons (line: reason)."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path.name}: {len(problems)} problem(s): " + "; ".join(problems[:20]))
        self.problems = problems


def _rows(path: Path) -> tuple[list[dict], bytes]:
    data = path.read_bytes()
    try:
        raw = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SitesError(path, ["the file is not UTF-8 text"]) from None
    try:
        dialect = csv.Sniffer().sniff(raw[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(raw), dialect=dialect)
    mapping = FieldMapping.load("parcel_sites", MAPPINGS)
    names, missing = mapping.resolve(list(reader.fieldnames or []))
    if missing:
        raise SitesError(path, [f"column(s) missing: {', '.join(missing)} (headings: "
                                f"{', '.join(mapping.aliases_of(missing[0])[:4])} ...)"])
    return [{names[k]: v for k, v in row.items() if k in names} for row in reader], data


def _number(value: object, limit: float, what: str, line: int, problems: list[str],
            zero: bool = False) -> float | None:
    if is_blank(value):
        return None
    try:
        number = parse_number(str(value).replace(",", "."))
    except ValueError:
        problems.append(f"line {line}: {what} {value!r} is not a number of metres")
        return None
    if not (number >= 0 if zero else number > 0) or number > limit:
        problems.append(f"line {line}: {what} {number:g} m is outside 0-{limit:g} m")
        return None
    return number


def load_parcel_sites(engine: Engine, path: Path) -> dict[str, int]:
    """Load the file; returns counts (inserted, updated, unchanged). SitesError: nothing
    loaded."""
    rows, data = _rows(path)
    problems: list[str] = []
    clean: list[dict] = []
    seen: dict[tuple[str, int, int], int] = {}
    for line, row in enumerate(rows, start=2):
        try:
            key = (parse_code(row.get("commune_code"), 5), int(str(row["sheet_no"]).strip()),
                   int(str(row["parcel_no"]).strip()))
        except (KeyError, TypeError, ValueError):
            problems.append(f"line {line}: a parcel is named by a 5-digit commune code, a "
                            "sheet number and a parcel number")
            continue
        alley = _number(row.get("alley_width_m"), MAX_ALLEY_M, "alley width", line, problems)
        height = _number(row.get("height_diff_m"), MAX_HEIGHT_M, "height difference", line,
                         problems, zero=True)
        if key in seen:
            problems.append(f"line {line}: parcel {'.'.join(map(str, key))} is given twice "
                            f"(also line {seen[key]})")
            continue
        seen[key] = line
        clean.append({"line": line, "commune": key[0], "sheet": key[1], "parcel": key[2],
                      "alley": alley, "height": height,
                      "note": None if is_blank(row.get("note")) else str(row["note"]).strip()})
    if problems:
        raise SitesError(path, problems)
    with engine.begin() as conn:
        conn.execute(text("""CREATE TEMP TABLE stage_site (line int, commune text, sheet int,
            parcel int, alley numeric(5,2), height numeric(6,2), note text) ON COMMIT DROP"""))
        if clean:
            conn.execute(text("INSERT INTO stage_site VALUES (:line, :commune, :sheet, "
                              ":parcel, :alley, :height, :note)"), clean)
        unknown = conn.execute(text("""
            SELECT s.line, s.commune || '.' || s.sheet || '.' || s.parcel FROM stage_site s
             WHERE NOT EXISTS (SELECT 1 FROM cadastre.parcel p
                                WHERE p.commune_code = s.commune AND p.sheet_no = s.sheet
                                  AND p.parcel_no = s.parcel AND p.status = 'current')
             ORDER BY s.line""")).all()
        if unknown:
            raise SitesError(path, [f"line {n}: no current parcel {ref}" for n, ref in unknown])
        counts = dict(conn.execute(text("""
            WITH up AS (
                INSERT INTO valuation.parcel_site AS t (district_code, parcel_uid,
                       alley_width_m, height_diff_m, note)
                SELECT p.district_code, p.uid, s.alley, s.height, s.note
                  FROM stage_site s JOIN cadastre.parcel p
                    ON p.commune_code = s.commune AND p.sheet_no = s.sheet
                   AND p.parcel_no = s.parcel AND p.status = 'current'
                ON CONFLICT (district_code, parcel_uid) DO UPDATE
                   SET alley_width_m = coalesce(EXCLUDED.alley_width_m, t.alley_width_m),
                       height_diff_m = coalesce(EXCLUDED.height_diff_m, t.height_diff_m),
                       note = coalesce(EXCLUDED.note, t.note), recorded_at = now()
                 WHERE (t.alley_width_m, t.height_diff_m, t.note) IS DISTINCT FROM
                       (coalesce(EXCLUDED.alley_width_m, t.alley_width_m),
                        coalesce(EXCLUDED.height_diff_m, t.height_diff_m),
                        coalesce(EXCLUDED.note, t.note))
                RETURNING (xmax = 0) AS inserted, t.district_code)
            SELECT 'inserted', count(*) FILTER (WHERE inserted) FROM up
            UNION ALL SELECT 'updated', count(*) FILTER (WHERE NOT inserted) FROM up
        """)).all())
        counts["unchanged"] = len(clean) - counts["inserted"] - counts["updated"]
        districts = list(conn.execute(text("""
            SELECT DISTINCT p.district_code FROM stage_site s JOIN cadastre.parcel p
              ON p.commune_code = s.commune AND p.sheet_no = s.sheet AND p.parcel_no = s.parcel
             WHERE p.status = 'current' ORDER BY 1""")).scalars())
        run_id = ledger.start_run(conn, file_name=path.name,
                                  sha256=hashlib.sha256(data).hexdigest(), layer=None,
                                  source_srid=None, mode="strict", status="loaded",
                                  started_at=datetime.now(UTC), features_read=len(rows),
                                  options={}, kind=KIND)
        ledger.finish_run(conn, run_id, counts=counts, rejected=0, districts=districts)
    return counts


def load_sample_sites(engine: Engine, prices_dir: Path, echo: Callable[..., None]) -> bool:
    """The samples' recorded alley widths (``manifest.json``'s ``sites``), after the
    parcels; skipped when that very file is loaded already."""
    manifest = read_manifest(prices_dir)
    name = (manifest or {}).get("sites", {}).get("file")
    if not name:
        return True
    path = prices_dir / name
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if ledger.loaded_run(engine, digest, KIND) is not None:
        echo(f"Samples: {name} already loaded")
        return True
    try:
        counts = load_parcel_sites(engine, path)
    except SitesError as exc:
        echo(f"Samples: {exc}", err=True)
        return False
    echo(f"Samples: {name}: parcel sites +{counts['inserted']} ~{counts['updated']} "
         f"={counts['unchanged']}")
    return True
