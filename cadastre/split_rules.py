"""The province's minimum split areas (diện tích tối thiểu được tách thửa), loaded as data.

Each province decides by its own decision (Hà Nội: 61/2024/QĐ-UBND, ...) the least area a
parcel made by a split may have, per land use and kind of commune; the dossiers' split rule
reads ``cadastre.min_split_area``. A file replaces its provinces' rows, all or nothing;
every refused row is named with its line and reason. CSV columns: ``province_code,
land_use, commune_kind (ward | town | commune), min_area_m2, min_width_m, source``.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from etl import ledger

KIND = "split_rules"
COLUMNS = ("province_code", "land_use", "commune_kind", "min_area_m2", "min_width_m",
           "source")
COMMUNE_KINDS = ("ward", "town", "commune")


class SplitRulesError(ValueError):
    """The file is refused; ``problems`` are its rows' reasons (line: reason)."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path.name}: {len(problems)} problem(s): " + "; ".join(problems[:20]))
        self.problems = problems


def load_split_rules(engine: Engine, path: Path) -> int:
    """Load the file; returns the rows loaded. Raises SplitRulesError (nothing loaded)."""
    data = path.read_bytes()
    try:
        rows = list(csv.DictReader(data.decode("utf-8-sig").splitlines()))
    except UnicodeDecodeError:
        raise SplitRulesError(path, ["the file is not UTF-8 text"]) from None
    if not rows or set(COLUMNS) - set(rows[0]):
        raise SplitRulesError(path, [f"columns needed: {', '.join(COLUMNS)}"])
    with engine.begin() as conn:
        provinces = set(conn.execute(text(
            "SELECT code FROM admin.admin_unit WHERE level = 'province'")).scalars())
        codes = set(conn.execute(text("SELECT code FROM cadastre.land_use_type "
                                      "WHERE replaced_by IS NULL")).scalars())
        problems, clean, seen = [], [], set()
        for line, row in enumerate(rows, start=2):
            p, use, kind = (row[c].strip() for c in ("province_code", "land_use",
                                                     "commune_kind"))
            try:
                area = float(row["min_area_m2"])
                width = float(row["min_width_m"]) if row["min_width_m"].strip() else None
            except ValueError:
                problems.append(f"line {line}: min_area_m2/min_width_m must be numbers")
                continue
            if p not in provinces:
                problems.append(f"line {line}: no province {p!r}")
            elif use not in codes:
                problems.append(f"line {line}: {use!r} is not a current land-use code")
            elif kind not in COMMUNE_KINDS:
                problems.append(f"line {line}: commune_kind must be one of "
                                f"{', '.join(COMMUNE_KINDS)}")
            elif not 0 < area < 1e7 or (width is not None and not 0 < width < 1e4):
                problems.append(f"line {line}: the minimum must be a positive area (m²)")
            elif not row["source"].strip():
                problems.append(f"line {line}: source (the province's decision) is needed")
            elif (p, use, kind) in seen:
                problems.append(f"line {line}: {p} {use} {kind} is given twice")
            else:
                seen.add((p, use, kind))
                clean.append({"p": p, "u": use, "k": kind, "a": area, "w": width,
                              "s": row["source"].strip()})
        if problems:
            raise SplitRulesError(path, problems)
        run_id = ledger.start_run(conn, file_name=path.name,
                                  sha256=hashlib.sha256(data).hexdigest(), layer=None,
                                  source_srid=None, mode="strict", status="loaded",
                                  started_at=datetime.now(UTC), features_read=len(rows),
                                  options={}, kind=KIND)
        conn.execute(text("DELETE FROM cadastre.min_split_area WHERE province_code = ANY(:p)"),
                     {"p": sorted({r["p"] for r in clean})})
        for r in clean:
            conn.execute(text("""
                INSERT INTO cadastre.min_split_area (province_code, land_use, commune_kind,
                       min_area_m2, min_width_m, source, load_run_id)
                VALUES (:p, :u, :k, :a, :w, :s, :run)
            """), {**r, "run": run_id})
        ledger.finish_run(conn, run_id, counts={"inserted": len(clean)}, rejected=0,
                          districts=[])
    return len(clean)


SAMPLE_FILE = "split_rules.csv"


def load_sample_split_rules(engine: Engine, samples_dir: Path,
                            echo: Callable[..., None]) -> bool:
    """The samples' minimum split areas; skipped when that very file is loaded already."""
    path = samples_dir / SAMPLE_FILE
    if not path.exists():
        return True
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if ledger.loaded_run(engine, digest, KIND) is not None:
        echo(f"Samples: {SAMPLE_FILE} already loaded")
        return True
    try:
        echo(f"Samples: {SAMPLE_FILE}: {load_split_rules(engine, path)} minimum split "
             "areas loaded")
    except SplitRulesError as exc:
        echo(f"Samples: {exc}", err=True)
        return False
    return True
