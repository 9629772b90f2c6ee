"""Read price-table sheets (Excel workbooks, CSV) into plain grids and find their headers.

Provincial tables are made for printing, not for machines: a title and the approving
decision above the table, header rows with merged cells ("Đoạn đường" over "Từ | Đến",
"Giá đất (đồng/m²)" over "VT1 .. VT4"), a road name merged down over its segments,
district headings between the rows, numbers typed as text ("1.200.000"). This module turns
a sheet into a grid where every merged cell's value fills its whole range (what a reader
sees), and finds the header by the column aliases of a field mapping (the price table's,
``valuation/mappings/prices.yaml``) rather than by position, so a province's layout is
data, not code.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from etl.fieldmap import FieldMapping, normalise_name
from etl.report import Issue, LoadError
from etl.sources import check_size, check_zip, suspect_text
from etl.values import is_blank

MAX_HEADER_SCAN = 25  # header rows are found within the first rows of a sheet
MAX_HEADER_DEPTH = 3  # a header spans at most this many rows
# Units stated in headings ("Giá đất (1.000 đồng/m²)"): normalised text -> factor to VND.
UNIT_MARKERS = (("trieudong", 1_000_000), ("1000dong", 1000), ("nghindong", 1000),
                ("ngandong", 1000))


class Formula(str):
    """A formula cell whose workbook stores no computed value (written by a program that
    does not calculate): its value is unknown, so it is named, never read as blank."""


@dataclass(frozen=True)
class Grid:
    """One sheet as rows of cell values, merged ranges filled with their value.

    ``merged`` keeps the merged ranges (0-based, inclusive: first row, first column, last
    row, last column) so a rule can refuse a merge where one value per cell is needed;
    ``notes`` are whole-file repairs made while reading (e.g. the CSV's code page).
    """

    name: str
    rows: list[list[object]]
    merged: tuple[tuple[int, int, int, int], ...] = ()
    notes: tuple[Issue, ...] = ()

    def cell(self, row: int, col: int) -> object:
        values = self.rows[row]
        return values[col] if col < len(values) else None

    def merged_range(self, row: int, col: int) -> str | None:
        """'G8:H8' when the cell is part of a merged range of several cells."""
        for r0, c0, r1, c1 in self.merged:
            if r0 <= row <= r1 and c0 <= col <= c1 and (r0, c0) != (r1, c1):
                return f"{self.address(r0, c0)}:{self.address(r1, c1)}"
        return None

    @staticmethod
    def address(row: int, col: int) -> str:
        """Spreadsheet address of a 0-based cell: (11, 6) -> 'G12'."""
        letters = ""
        n = col + 1
        while n:
            n, rem = divmod(n - 1, 26)
            letters = chr(65 + rem) + letters
        return f"{letters}{row + 1}"


@dataclass(frozen=True)
class Header:
    """Where a sheet's header is and which column holds which canonical field."""

    first_row: int
    last_row: int
    columns: dict[str, int]  # canonical name -> 0-based column
    labels: dict[str, str]  # canonical name -> heading as written (for messages)
    unit_factor: int  # multiply prices by this to get VND/m²


def read_workbook(path: Path) -> dict[str, Grid]:
    """Every sheet of an .xlsx workbook, by name, with merged cells filled."""
    from openpyxl import load_workbook

    check_zip(path, check_size(path))  # an .xlsx is a zip: no zip bomb reaches openpyxl
    try:
        book = load_workbook(path, data_only=True)
        # Formulas: a cell whose cached value is missing is a formula never calculated.
        formulas = load_workbook(path, data_only=False)
    except Exception as exc:  # a damaged or non-Excel file: nothing can be loaded
        raise LoadError(path, f"cannot be read as an Excel workbook: {exc}") from exc
    grids = {}
    for sheet in book.worksheets:
        rows = [list(r) for r in sheet.iter_rows(values_only=True)]
        for r, row in enumerate(formulas[sheet.title].iter_rows(values_only=True)):
            for c, written in enumerate(row):
                text = getattr(written, "text", written)  # ArrayFormula keeps it in .text
                if (r < len(rows) and c < len(rows[r]) and rows[r][c] is None
                        and isinstance(text, str) and text.startswith("=")):
                    rows[r][c] = Formula(text)
        for merged in sheet.merged_cells.ranges:
            value = sheet.cell(merged.min_row, merged.min_col).value
            for r in range(merged.min_row - 1, merged.max_row):
                if r >= len(rows):
                    continue
                row = rows[r]
                row.extend([None] * (merged.max_col - len(row)))
                for c in range(merged.min_col - 1, merged.max_col):
                    row[c] = value
        spans = tuple((m.min_row - 1, m.min_col - 1, m.max_row - 1, m.max_col - 1)
                      for m in sheet.merged_cells.ranges)
        grids[sheet.title] = check_grid_text(Grid(sheet.title, rows, spans), path.name)
    return grids


def check_grid_text(grid: Grid, file: str, notes: tuple[Issue, ...] = ()) -> Grid:
    """The grid with its text in Unicode NFC; LoadError naming the sheet and cell of the
    first text that is not Vietnamese (TCVN3/VNI font text typed into the sheet, or a
    wrong code page)."""
    rows = [[unicodedata.normalize("NFC", v) if isinstance(v, str) else v for v in row]
            for row in grid.rows]
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            bad = suspect_text(value) if isinstance(value, str) else ""
            if bad:
                raise LoadError(file, f"sheet {grid.name!r} cell {Grid.address(r, c)} has "
                                      f"text that is not Unicode Vietnamese (characters "
                                      f"{bad!r}): TCVN3 (ABC) or VNI font text, or a wrong "
                                      "code page. Convert it to Unicode (e.g. Unikey's "
                                      "converter) and save again")
    return Grid(grid.name, rows, grid.merged, notes)


def read_csv(path: Path) -> Grid:
    """A CSV export of one sheet (UTF-8, BOM allowed; ',' ';' or tab separated).

    Merged cells arrive empty in a CSV; the row parser carries names down (see
    ``valuation.rules``), and the header finder reads sub-heading rows on their own.
    A CSV that is not UTF-8 is read as Windows-1258 (what Excel writes as "CSV" on a
    Vietnamese Windows) and that is reported; if it then reads as text no Vietnamese table
    has (TCVN3/VNI font text), it is refused naming the cell.
    """
    notes: tuple[Issue, ...] = ()
    check_size(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LoadError(path, f"cannot be read: {exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1258", errors="replace")
        notes = (Issue(0, f"{path.name}!encoding", "not UTF-8: read as Windows-1258 "
                       "(cp1258), the Vietnamese Windows code page", severity="repair"),)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = [[None if not c.strip() else c.strip() for c in row]
            for row in csv.reader(io.StringIO(text), dialect)]
    return check_grid_text(Grid(path.name, rows), path.name, notes)


def _label_candidates(texts: list[str]) -> list[tuple[str, str]]:
    """(normalised, as written) for each heading text of a column and for the runs of
    consecutive ones, so "Vị trí" over "1" also reads as "Vị trí 1"."""
    seen: list[str] = []
    for t in texts:
        if not seen or seen[-1] != t:
            seen.append(t)
    out = []
    for i in range(len(seen)):
        for j in range(i + 1, len(seen) + 1):
            written = " ".join(seen[i:j])
            out.append((normalise_name(written), written))
    return out


def _match(grid: Grid, start: int, depth: int, mapping: FieldMapping
           ) -> tuple[dict[str, int], dict[str, str]]:
    width = max((len(r) for r in grid.rows[start:start + depth]), default=0)
    candidates: list[list[tuple[str, str]]] = []
    for col in range(width):
        texts = [str(grid.cell(r, col)).strip() for r in range(start, start + depth)
                 if not is_blank(grid.cell(r, col))]
        candidates.append(_label_candidates(texts))
    columns: dict[str, int] = {}
    labels: dict[str, str] = {}
    used: set[int] = set()
    for spec in mapping.specs:
        aliases = {normalise_name(a) for a in spec.aliases}
        for col, cands in enumerate(candidates):
            if col in used:
                continue
            hit = next((written for norm, written in cands if norm in aliases), None)
            if hit is not None:
                columns[spec.name], labels[spec.name] = col, hit
                used.add(col)
                break
    return columns, labels


def _unit_factor(grid: Grid, last_row: int) -> int:
    for r in range(last_row + 1):
        for value in grid.rows[r]:
            if isinstance(value, str):
                norm = normalise_name(value)
                for marker, factor in UNIT_MARKERS:
                    if marker in norm:
                        return factor
    return 1


def find_header(grid: Grid, mapping: FieldMapping, required: list[str], file: str,
                first_row: int | None = None) -> Header:
    """The first block of 1-3 rows whose headings name every ``required`` field.

    Among the depths that do, the one naming the most fields wins (so "Từ | Đến" under a
    merged "Đoạn đường" is found). ``first_row`` (0-based) fixes where the header starts,
    for a sheet whose title rows would otherwise be taken for it. LoadError names the sheet
    when no block qualifies.
    """
    starts = (range(first_row, min(first_row + 1, len(grid.rows))) if first_row is not None
              else range(min(MAX_HEADER_SCAN, len(grid.rows))))
    for start in starts:
        best: tuple[int, dict[str, int], dict[str, str]] | None = None
        for depth in range(1, MAX_HEADER_DEPTH + 1):
            if start + depth > len(grid.rows):
                break
            columns, labels = _match(grid, start, depth, mapping)
            if all(r in columns for r in required) and (best is None
                                                        or len(columns) > len(best[1])):
                best = (depth, columns, labels)
        if best is not None:
            depth, columns, labels = best
            last = start + depth - 1
            return Header(start, last, columns, labels, _unit_factor(grid, last))
    wanted = ", ".join(f"{r} (e.g. {mapping.aliases_of(r)[0]!r})" for r in required)
    where = (f"at row {first_row + 1}" if first_row is not None
             else f"in its first {MAX_HEADER_SCAN} rows")
    raise LoadError(file, f"sheet {grid.name!r}: no header row naming {wanted} {where} "
                          "(a heading the loader does not know can be added in the "
                          "sidecar: columns: {<name>: [<heading>]})")
