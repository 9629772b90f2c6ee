"""Validate the rows of a price table's sheets: every reject names sheet, row and column.

Rejects are ``Issue``s whose ``feature_no`` is the sheet's row number (as the spreadsheet
shows it) and whose ``field`` is ``"<sheet>!<column heading>"``, e.g. ``"Đất ở đô thị!VT2"``;
the reason names the cell (``G12``). For a CSV the sheet is the file name.

What is checked: prices are numbers (Vietnamese "1.200.000" or numeric cells), whole VND,
> 0, present for every position the sheet has (missing positions), and do not increase
from VT1 to VTn; land types are valuation land types; area classes 1-6; communes belong to
the table's province; one row per segment / (land type, area class) / commune in a sheet;
the same segment priced by several sheets agrees on its road class and district.

Layout conventions read here: a road name left blank continues the road above (merged
cells exported to CSV); a row with a name but no segment and no prices is a heading, and a
heading naming a district of the province ("I. QUẬN BA ĐÌNH") sets the district of the rows
under it; a "Loại đất"/land-type cell left blank continues the one above.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from etl.fieldmap import FieldMapping, normalise_name
from etl.report import Issue, LoadError
from etl.sheets import Formula, Grid, Header, find_header
from etl.values import is_blank, parse_code, parse_number
from valuation.meta import SheetSpec

ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6}
THOUSANDS = re.compile(r"^\d{1,3}\.\d{3}$")
HEADING_PREFIX = re.compile(r"^\s*(?:[IVXLC]+|[A-Z]|\d+)\s*[.)/-]\s*", re.IGNORECASE)
DISTRICT_WORDS = ("quan", "huyen", "thixa", "thanhpho")
# Longest text a segment's labels may have: a longer one is a paragraph pasted into a
# cell (or cells run together), not a road name.
MAX_TEXT = {"road_name": 200, "from_desc": 300, "to_desc": 300, "road_class": 20}


def segment_key(road: str, start: str | None, end: str | None) -> str:
    """How a row and a geometry find each other: road|from|to, case, diacritics and
    spacing folded."""
    return "|".join(normalise_name(v or "") for v in (road, start, end))


def parse_price(value: object, factor: int) -> int:
    """A price cell in whole VND/m². "1.200" is 1,200 (VND prices have no decimals, so a
    single '.' before three digits groups thousands). Raises ValueError with the reason."""
    if isinstance(value, Formula):
        raise ValueError(f"formula {value} has no computed value in the workbook: open "
                         "and save it in Excel or LibreOffice (which store the value), or "
                         "type the price")
    if isinstance(value, str) and THOUSANDS.match(value.strip()):
        value = value.strip().replace(".", "")
    try:
        number = parse_number(value) * factor
    except ValueError as exc:
        raise ValueError(f"text in a price cell: {exc}") from None
    if number != int(number):
        raise ValueError("not a whole number of VND")
    if number <= 0:
        raise ValueError("must be greater than 0")
    return int(number)


def parse_area_class(value: object) -> int:
    text = str(value).strip().upper()
    if isinstance(value, float) and value == int(value):
        text = str(int(value))
    digits = re.findall(r"\d+", text)
    if digits:
        number = int(digits[-1])
    else:
        words = re.findall(r"[IVX]+", text)
        number = ROMAN.get(words[-1], 0) if words else 0
    if not 1 <= number <= 6:
        raise ValueError("area class (khu vực) must be 1-6")
    return number


@dataclass
class SegmentRow:
    sheet: str
    row: int
    key: str
    road_name: str
    from_desc: str | None
    to_desc: str | None
    road_class: str | None
    district_code: str | None
    land_type: str
    prices: list[int]


@dataclass
class AreaRow:
    sheet: str
    row: int
    land_type: str
    area_class: int
    prices: list[int]


@dataclass
class ClassRow:
    sheet: str
    row: int
    commune_code: str
    area_class: int


@dataclass
class ParsedTable:
    """Everything the sheets say, plus what was rejected (and what rejected rows would have
    keyed, so quarantine mode keeps their existing rates rather than deleting them)."""

    segments: list[SegmentRow] = field(default_factory=list)
    areas: list[AreaRow] = field(default_factory=list)
    classes: list[ClassRow] = field(default_factory=list)
    scopes: set[tuple[str, str]] = field(default_factory=set)  # (land_type, segment|area)
    kept_segment_keys: set[tuple[str, str]] = field(default_factory=set)  # (land_type, key)
    kept_area_keys: set[tuple[str, int]] = field(default_factory=set)
    kept_communes: set[str] = field(default_factory=set)
    has_classes: bool = False
    rows_read: int = 0
    issues: list[Issue] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    """Reference facts for one table: its province's districts and communes, land types."""

    province_code: str
    districts: dict[str, str]  # normalised district name (with and without 'Quận') -> code
    communes: set[str]
    land_types: set[str]


class SheetParser:
    """Parses one sheet of a role into ``ParsedTable``; collects issues as it goes."""

    def __init__(self, grid: Grid, spec: SheetSpec, header: Header, ctx: Context,
                 out: ParsedTable) -> None:
        self.grid, self.spec, self.header, self.ctx, self.out = grid, spec, header, ctx, out
        self.name = grid.name
        found = [p for p in range(1, 6) if f"p{p}" in header.columns]
        self.positions: list[int] = []
        if spec.role == "area_classes":
            return
        count = spec.positions or max(found)
        missing = [p for p in range(1, count + 1) if p not in found]
        if missing:
            raise LoadError(grid.name, f"sheet {grid.name!r}: no column for position(s) "
                            f"{', '.join(f'VT{p}' for p in missing)} (the sheet has "
                            f"{', '.join(header.labels[f'p{p}'] for p in found)}; "
                            f"{count} positions expected)")
        self.positions = list(range(1, count + 1))

    # -- helpers ----------------------------------------------------------------------
    def value(self, r: int, name: str) -> object:
        col = self.header.columns.get(name)
        return None if col is None else self.grid.cell(r, col)

    def text(self, r: int, name: str) -> str | None:
        v = self.value(r, name)
        if is_blank(v):
            return None
        if isinstance(v, float) and v == int(v):
            v = int(v)
        return " ".join(str(v).split())

    def where(self, name: str) -> str:
        label = self.header.labels.get(name) or name
        return f"{self.name}!{label}"

    def reject(self, r: int, name: str, reason: str, value: object = None) -> None:
        col = self.header.columns.get(name)
        cell = f" (cell {Grid.address(r, col)})" if col is not None else ""
        self.out.issues.append(Issue(r + 1, self.where(name), reason + cell,
                                     None if is_blank(value) else str(value)))

    def prices(self, r: int) -> list[int] | None:
        """Every position's price of the row, or None after rejecting the bad cells."""
        out: list[int | None] = []
        for p in self.positions:
            raw = self.value(r, f"p{p}")
            span = self.grid.merged_range(r, self.header.columns[f"p{p}"])
            if span is not None:
                self.reject(r, f"p{p}", f"price cell is part of merged cells {span}: which "
                                        "row and position the price belongs to is "
                                        "ambiguous; give each its own cell", raw)
                out.append(None)
                continue
            if is_blank(raw):
                self.reject(r, f"p{p}", f"missing price for position {p} (VT{p})")
                out.append(None)
                continue
            try:
                out.append(parse_price(raw, self.header.unit_factor))
            except ValueError as exc:
                self.reject(r, f"p{p}", str(exc), raw)
                out.append(None)
        if any(v is None for v in out):
            return None
        for p in self.positions[1:]:
            if out[p - 1] > out[p - 2]:
                self.reject(r, f"p{p}", f"VT{p} ({out[p - 1]:,}) is higher than VT{p - 1} "
                                        f"({out[p - 2]:,}): prices must not increase from "
                                        "position 1 to the last", self.value(r, f"p{p}"))
                return None
        return out  # type: ignore[return-value]

    def data_rows(self) -> range:
        return range(self.header.last_row + 1, len(self.grid.rows))

    def texts(self, r: int) -> set[str]:
        """The distinct values of a row outside the STT column: one value alone is a
        heading or title (merged across the row or not), none is a blank row."""
        stt = self.header.columns.get("stt")
        return {" ".join(str(v).split()) for c, v in enumerate(self.grid.rows[r])
                if c != stt and not is_blank(v)}

    def land_type(self, r: int, carried: str | None) -> tuple[str | None, str | None]:
        """(land type of the row, value to carry down); rejects unknown codes."""
        raw = self.text(r, "land_type")
        code = raw.upper() if raw else carried or self.spec.land_type
        if code is None:
            self.reject(r, "land_type", "no land type: fill the land-type column or name "
                                        "the sheet's land_type in the sidecar")
            return None, carried
        if code not in self.ctx.land_types:
            self.reject(r, "land_type", f"unknown land type {code!r} (valuation land types: "
                                        f"{', '.join(sorted(self.ctx.land_types))})", raw)
            return None, code
        return code, code

    # -- roles ------------------------------------------------------------------------
    def segments(self) -> None:
        out, land = self.out, self.spec.land_type
        out.scopes.add((land, "segment"))
        seen: dict[str, int] = {}
        duplicates: set[str] = set()
        mine: list[SegmentRow] = []
        road: str | None = None
        district: str | None = None
        for r in self.data_rows():
            texts = self.texts(r)
            if not texts:
                continue  # blank, or a note in the STT column only
            if len(texts) == 1:  # a heading (merged or not): "I. QUẬN BA ĐÌNH"
                district = self._heading(texts.pop(), district)
                road = None
                continue
            name = self.text(r, "road_name")
            start, end = self.text(r, "from_desc"), self.text(r, "to_desc")
            out.rows_read += 1
            if self._too_long(r):
                continue
            if name:
                road = name
            elif road is None:
                self.reject(r, "road_name", "road name missing")
                continue
            key = segment_key(road, start, end)
            out.kept_segment_keys.add((land, key))
            if key in seen:
                # Which of the two is right? Neither is loaded; both are named.
                for this, other in ((r, seen[key]), (seen[key], r)):
                    self.reject(this, "road_name", f"duplicate segment: row {other + 1} of "
                                "this sheet prices the same road and segment",
                                f"{road} | {start or ''} | {end or ''}")
                duplicates.add(key)
                continue
            seen[key] = r
            prices = self.prices(r)
            if prices is None:
                continue
            mine.append(SegmentRow(self.name, r + 1, key, road, start, end,
                                   self.text(r, "road_class"), district, land, prices))
        out.segments += [s for s in mine if s.key not in duplicates]

    def _too_long(self, r: int) -> bool:
        """Reject the row when a label is longer than ``MAX_TEXT`` allows."""
        long = False
        for name, limit in MAX_TEXT.items():
            value = self.text(r, name)
            if value is not None and len(value) > limit:
                self.reject(r, name, f"longer than {limit} characters ({len(value)})",
                            value[:40] + "...")
                long = True
        return long

    def _heading(self, text: str, current: str | None) -> str | None:
        bare = normalise_name(HEADING_PREFIX.sub("", text))
        code = self.ctx.districts.get(bare)
        return code if code is not None else current

    def area_matrix(self) -> None:
        out = self.out
        if self.spec.land_type:
            out.scopes.add((self.spec.land_type, "area"))
        seen: dict[tuple[str, int], int] = {}
        carried: str | None = None
        for r in self.data_rows():
            if len(self.texts(r)) <= 1:
                continue  # blank, or a heading such as "1. Đất trồng lúa"
            out.rows_read += 1
            land, carried = self.land_type(r, carried)
            if land is not None:
                out.scopes.add((land, "area"))
            raw = self.value(r, "area_class")
            try:
                area = parse_area_class(raw)
            except ValueError as exc:
                self.reject(r, "area_class", str(exc) if not is_blank(raw)
                            else "area class (khu vực) missing", raw)
                continue
            if land is None:
                continue
            out.kept_area_keys.add((land, area))
            if (land, area) in seen:
                self.reject(r, "area_class", f"duplicate: row {seen[(land, area)] + 1} prices "
                                             f"{land} in area class {area} too", raw)
                continue
            seen[(land, area)] = r
            prices = self.prices(r)
            if prices is not None:
                out.areas.append(AreaRow(self.name, r + 1, land, area, prices))

    def area_classes(self) -> None:
        out = self.out
        out.has_classes = True
        seen: dict[str, int] = {}
        for r in self.data_rows():
            raw = self.value(r, "commune_code")
            if len(self.texts(r)) <= 1:
                continue
            out.rows_read += 1
            try:
                commune = parse_code(raw, 5)
            except (ValueError, TypeError):
                self.reject(r, "commune_code", "not a 5-digit commune code", raw)
                continue
            out.kept_communes.add(commune)
            if commune not in self.ctx.communes:
                self.reject(r, "commune_code", f"commune {commune} is not a commune of "
                                               f"province {self.ctx.province_code}", raw)
                continue
            if commune in seen:
                self.reject(r, "commune_code", f"duplicate: row {seen[commune] + 1} classes "
                                               "this commune too", raw)
                continue
            seen[commune] = r
            area_raw = self.value(r, "area_class")
            try:
                area = parse_area_class(area_raw)
            except ValueError as exc:
                self.reject(r, "area_class", str(exc), area_raw)
                continue
            out.classes.append(ClassRow(self.name, r + 1, commune, area))


def parse_sheets(grids: dict[str, Grid], specs: tuple[SheetSpec, ...], mapping: FieldMapping,
                 required: dict[str, list[str]], ctx: Context, file: str) -> ParsedTable:
    """Parse every sheet the sidecar names; LoadError when one is missing or headerless."""
    out = ParsedTable()
    for spec in specs:
        grid = grids.get(spec.sheet) if spec.sheet is not None else next(iter(grids.values()))
        if grid is None:
            raise LoadError(file, f"sheet {spec.sheet!r} named in the sidecar is not in the "
                                  f"workbook (sheets: {', '.join(grids)})")
        header = find_header(grid, mapping, required[spec.role], file)
        parser = SheetParser(grid, spec, header, ctx, out)
        getattr(parser, spec.role)()
    _check_segment_agreement(out)
    return out


def _check_segment_agreement(out: ParsedTable) -> None:
    """A segment priced by several sheets (ODT, TMD, ...) is one segment: same road class
    and district everywhere."""
    first: dict[str, SegmentRow] = {}
    bad: set[int] = set()
    for i, seg in enumerate(out.segments):
        prior = first.setdefault(seg.key, seg)
        if prior is seg:
            continue
        for attr, label in (("road_class", "road class"), ("district_code", "district")):
            a, b = getattr(prior, attr), getattr(seg, attr)
            if a and b and a != b:
                out.issues.append(Issue(seg.row, f"{seg.sheet}!{label}",
                                        f"{label} {b!r} differs from {a!r} in sheet "
                                        f"{prior.sheet!r} row {prior.row} for the same "
                                        "segment", b))
                bad.add(i)
    out.segments = [s for i, s in enumerate(out.segments) if i not in bad]


def segment_attributes(rows: list[SegmentRow]) -> dict[str, SegmentRow]:
    """One row per segment key (the first sheet that prices it), filling the road class
    and district from later sheets where the first left them blank."""
    merged: dict[str, SegmentRow] = {}
    extra: dict[str, dict[str, str]] = defaultdict(dict)
    for seg in rows:
        if seg.key not in merged:
            merged[seg.key] = seg
        for attr in ("road_class", "district_code"):
            if getattr(seg, attr):
                extra[seg.key].setdefault(attr, getattr(seg, attr))
    for key, seg in merged.items():
        for attr, value in extra[key].items():
            if not getattr(seg, attr):
                setattr(seg, attr, value)
    return merged
