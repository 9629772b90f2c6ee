"""The map sheet crosswalk: old commune + sheet -> new commune + sheet, loaded as data.

Provinces renumber the sheets of the old communes into the commune each went into since
the 2025 reform, and keep the old -> new table (domain.md); a look-up must answer by
either number. The table is a delivery like any other: a CSV (``old_commune_code,
old_sheet_no, new_commune_code, new_sheet_no``, or the aliases in
``mappings/sheet_crosswalk.yaml``) through the ETL's one pipeline, strict (nothing loaded
if a row is refused) or quarantine, merged in ONE transaction into
``cadastre.sheet_crosswalk``; re-loading the same file changes nothing.

A row is refused, with its line, when a code is not a commune of its period (the old one
pre-2025, the new one since the reform), when the old commune did not go (wholly or in
part) into the new one by the 2025 crosswalk, when a sheet number is not a positive whole
number, when the file gives the same old or the same new sheet twice, or when the new
sheet is already another old sheet's in the database (a new number names one sheet).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from cadastre import MAPPINGS
from etl.fieldmap import FieldMapping
from etl.pipeline import Prepared, Refused, run_load
from etl.progress import Progress
from etl.report import Issue, LoadError, LoadResult
from etl.rowcheck import RowChecker
from etl.samples import load_listed
from etl.sources import check_size, file_sha256
from etl.staging import advisory_lock, copy_rows
from etl.values import parse_code, parse_positive_int

KIND = "sheet_crosswalk"
COLUMNS = ("old_commune_code", "old_sheet_no", "new_commune_code", "new_sheet_no")
MAX_SHEET = 2**31 - 1
SAMPLE_FILE = "sheet_crosswalk.csv"
STAGE_DDL = """
CREATE TEMP TABLE stage_sheet_xwalk (
    feature_no int, old_commune_code text, old_sheet_no int, new_commune_code text,
    new_sheet_no int
) ON COMMIT DROP
"""


def sheet_number(value: object) -> int:
    number = parse_positive_int(value)
    if number > MAX_SHEET:
        raise ValueError("a sheet number is at most 2147483647")
    return number


class SheetChecker(RowChecker):
    """One row's rules: both communes known in their period, the pair in the crosswalk."""

    def __init__(self, old: dict[str, str], new: set[str], pairs: set[tuple[str, str]]
                 ) -> None:
        super().__init__()
        self.old, self.new, self.pairs = old, new, pairs

    def row(self, no: int, values: dict[str, object]) -> dict | None:
        old = self.required(no, "old_commune_code", values["old_commune_code"], parse_code, 5)
        new = self.required(no, "new_commune_code", values["new_commune_code"], parse_code, 5)
        old_sheet = self.required(no, "old_sheet_no", values["old_sheet_no"], sheet_number)
        new_sheet = self.required(no, "new_sheet_no", values["new_sheet_no"], sheet_number)
        if old is not None and old not in self.old:
            self.reject(no, "old_commune_code", f"{old} is not a commune of the pre-2025 "
                        "units (GSO catalogue, valid until 30 June 2025)", old)
            old = None
        if new is not None and new not in self.new:
            self.reject(no, "new_commune_code", f"{new} is not a commune since the 1 July "
                        "2025 reform", new)
            new = None
        if old is not None and new is not None and (old, new) not in self.pairs:
            self.reject(no, "new_commune_code", f"commune {old} did not go into commune "
                        f"{new} by the 2025 crosswalk", new)
            return None
        if None in (old, new, old_sheet, new_sheet):
            return None
        return {"feature_no": no, "old_commune_code": old, "old_sheet_no": old_sheet,
                "new_commune_code": new, "new_sheet_no": new_sheet}


def duplicates(rows: list[dict]) -> list[Issue]:
    """Every row of an old sheet, or a new sheet, the file gives more than once."""
    issues = []
    for side in ("old", "new"):
        seen: dict[tuple[str, int], list[int]] = defaultdict(list)
        for r in rows:
            seen[(r[f"{side}_commune_code"], r[f"{side}_sheet_no"])].append(r["feature_no"])
        for (commune, sheet), nos in seen.items():
            for no in nos if len(nos) > 1 else ():
                others = ", ".join(str(o) for o in nos if o != no)
                issues.append(Issue(no, f"{side}_sheet_no", f"{side} sheet {sheet} of "
                                    f"commune {commune} is given more than once (also line "
                                    f"{others})", str(sheet)))
    return issues


def read_rows(path: Path) -> pd.DataFrame:
    """The CSV's rows as text (codes keep their leading zeros); LoadError if unreadable
    or over the delivery size limit (checked before reading)."""
    check_size(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise LoadError(path, "the file is not UTF-8 text") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise LoadError(path, f"not a CSV table: {exc}") from None
    return frame


class SheetCrosswalkLoader:
    """One crosswalk file through the pipeline (``etl.pipeline.Loader``)."""

    kind = KIND
    tables = ("cadastre.sheet_crosswalk",)

    def __init__(self, path: Path, progress: Progress) -> None:
        self.path, self.progress = path, progress
        self.rows: list[dict] = []

    def identity(self) -> str | None:
        return file_sha256(self.path) if self.path.is_file() else None

    def prepare(self, engine: Engine, result: LoadResult, run_options: dict) -> Prepared:
        if not self.path.is_file():
            raise LoadError(self.path, "no such file")
        frame = read_rows(self.path)
        result.features_read = len(frame)
        attrs = FieldMapping.load("sheet_crosswalk", MAPPINGS).select(frame, self.path.name)
        with engine.connect() as conn:
            old = dict(conn.execute(text(
                "SELECT code, parent_code FROM admin.admin_unit WHERE level = 'commune' "
                "AND valid_to = DATE '2025-06-30'")).all())
            new = set(conn.execute(text(
                "SELECT code FROM admin.admin_unit WHERE level = 'commune' "
                "AND valid_from >= DATE '2025-07-01' AND valid_to IS NULL")).scalars())
            pairs = set(conn.execute(text(
                "SELECT old_code, new_code FROM admin.admin_unit_map")).all())
        checker = SheetChecker(old, new, {tuple(p) for p in pairs})
        # a line number is what an officer finds the row by (the header is line 1)
        rows = [r for i, values in enumerate(attrs.to_dict("records"))
                if (r := checker.row(i + 2, values)) is not None]
        issues = checker.issues + duplicates(rows)
        rejected = {i.feature_no for i in issues if i.severity == "reject"}
        self.rows = [r for r in rows if r["feature_no"] not in rejected]
        districts = sorted({old[r["old_commune_code"]] for r in self.rows})
        return Prepared(sorted(issues, key=lambda i: i.feature_no), districts,
                        file_sha256(self.path))

    def lock(self, conn: Connection) -> None:
        advisory_lock(conn, KIND, ["sheet_crosswalk"])

    def merge(self, conn: Connection, run_id: int, result: LoadResult, progress: Progress,
              issues: list[Issue]) -> dict[str, int]:
        conn.execute(text(STAGE_DDL))
        copy_rows(conn, "stage_sheet_xwalk", ", ".join(("feature_no",) + COLUMNS),
                  pd.DataFrame(self.rows, columns=["feature_no", *COLUMNS]))
        taken = [Issue(r.feature_no, "new_sheet_no", f"new sheet {r.new_sheet_no} of "
                       f"commune {r.new_commune_code} is already old sheet "
                       f"{r.old_commune_code}.{r.old_sheet_no}'s (a new number names one "
                       "sheet)", str(r.new_sheet_no))
                 for r in conn.execute(text("""
                     SELECT s.feature_no, s.new_commune_code, s.new_sheet_no,
                            x.old_commune_code, x.old_sheet_no
                       FROM stage_sheet_xwalk s
                       JOIN cadastre.sheet_crosswalk x
                         ON x.new_commune_code = s.new_commune_code
                        AND x.new_sheet_no = s.new_sheet_no
                        AND (x.old_commune_code, x.old_sheet_no)
                            IS DISTINCT FROM (s.old_commune_code, s.old_sheet_no)
                      -- unless this file gives that old sheet another number
                      WHERE NOT EXISTS (
                            SELECT 1 FROM stage_sheet_xwalk o
                             WHERE o.old_commune_code = x.old_commune_code
                               AND o.old_sheet_no = x.old_sheet_no)
                      ORDER BY s.feature_no"""))]
        if taken:
            if result.mode == "strict":
                raise Refused(taken)
            issues += taken
            conn.execute(text("DELETE FROM stage_sheet_xwalk WHERE feature_no = ANY(:nos)"),
                         {"nos": [i.feature_no for i in taken]})
        plan = dict(conn.execute(text("""
            SELECT CASE WHEN x.old_commune_code IS NULL THEN 'new'
                        WHEN (x.new_commune_code, x.new_sheet_no)
                             <> (s.new_commune_code, s.new_sheet_no) THEN 'changed'
                        ELSE 'unchanged' END AS action, count(*)
              FROM stage_sheet_xwalk s
              LEFT JOIN cadastre.sheet_crosswalk x
                ON x.old_commune_code = s.old_commune_code AND x.old_sheet_no = s.old_sheet_no
             GROUP BY 1""")).all())
        conn.execute(text("""
            INSERT INTO cadastre.sheet_crosswalk
                   (old_commune_code, old_sheet_no, new_commune_code, new_sheet_no,
                    load_run_id)
            SELECT old_commune_code, old_sheet_no, new_commune_code, new_sheet_no, :run
              FROM stage_sheet_xwalk
            ON CONFLICT (old_commune_code, old_sheet_no) DO UPDATE
               SET new_commune_code = EXCLUDED.new_commune_code,
                   new_sheet_no = EXCLUDED.new_sheet_no, load_run_id = EXCLUDED.load_run_id
             WHERE (sheet_crosswalk.new_commune_code, sheet_crosswalk.new_sheet_no)
                   IS DISTINCT FROM (EXCLUDED.new_commune_code, EXCLUDED.new_sheet_no)
        """), {"run": run_id})
        return {"inserted": plan.get("new", 0), "updated": plan.get("changed", 0),
                "unchanged": plan.get("unchanged", 0)}


def load_sheet_crosswalk(engine: Engine, path: Path, *, quarantine: bool = False,
                         progress: Progress | None = None) -> LoadResult:
    """Load one crosswalk file; never raises for bad data, the result says what happened."""
    progress = progress or Progress(KIND, enabled=False)
    result = LoadResult(file=path, mode="quarantine" if quarantine else "strict")
    return run_load(engine, SheetCrosswalkLoader(path, progress), result,
                    quarantine=quarantine, options={}, progress=progress)


def load_sample_sheet_crosswalk(engine: Engine, samples_dir: Path,
                                echo: Callable[..., None]) -> bool:
    """The samples' sheet crosswalk (after the parcels); skipped when loaded already."""
    path = samples_dir / SAMPLE_FILE
    if not path.exists():
        return True
    return load_listed(engine, [path], kind=KIND, label="sheet crosswalk ",
                       identity=file_sha256, name=lambda p: p.name,
                       load=lambda p: load_sheet_crosswalk(engine, p), echo=echo)
