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
cells exported to CSV); a "Loại đất"/land-type cell left blank continues the one above.
The segment may be written in one column ("Đoạn đường": "Từ X đến Y", "Đoạn từ X đến Y",
"X - Y", "Cả đường", "Toàn tuyến"), which is split into from/to (``split_segment``) and
kept as written. A row with one text and no prices is a **section row** that qualifies
the rows under it (``Section``): naming a commune or ward of the province ("PHƯỜNG HẢI
CHÂU": a 2025 unit in a table effective from 1 July 2025, else a pre-2025 one) or a
district ("I. QUẬN BA ĐÌNH") it sets where they are; naming a cross-section width ("Các
tuyến đường chưa có tên ...: Mặt cắt từ 15m đến dưới 25m") it makes the rows under it
rows for unnamed roads of that width. A row whose road cell is a cross-section ("Đường có
mặt cắt dưới 5,5 m") or "the remaining roads" ("Các đường còn lại") is such a row itself:
it prices the roads of its commune (or district) no geometry draws. A segments row with
a road class and no prices takes the prices of that class from the ``road_classes``
sheet of its land type.
"""

from __future__ import annotations

import re
import unicodedata
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
UNIT_WORDS = ("phuong", "xa", "thitran", "dackhu")
WHOLE_ROAD = ("caduong", "catuyen", "toantuyen", "toanduong", "tronduong", "trontuyen",
              "suottuyen", "suotduong", "toanbo", "toanbotuyen")
REMAINING = re.compile(r"(?:con\s*lai|chua\s*(?:duoc\s*)?(?:dat|co)\s*ten)")
WIDTH_WORDS = re.compile(r"(?:mat\s*cat|long\s*duong|be\s*rong|chieu\s*rong|rong\s*\d)")
NUMBER = r"(\d+(?:[.,]\d+)?)\s*m?"
# Cross-section bounds as tables write them (text folded: no diacritics, lower case).
WIDTH_RANGES = (
    (re.compile(rf"tu\s*{NUMBER}\s*(?:den|toi|-)\s*(?:duoi|<)?\s*{NUMBER}"), "range"),
    (re.compile(rf"(?:>=|≥|tu|tren|lon\s*hon|>)\s*{NUMBER}\s*(?:tro\s*len)?"), "min"),
    (re.compile(rf"(?:duoi|<|nho\s*hon|<=|≤)\s*{NUMBER}"), "max"),
)
SEGMENT_FROM_TO = re.compile(r"^(?:đoạn\s+)?(?:từ|tu)\s+(.+?)\s+(?:đến|tới|den|toi)\s+(.+)$",
                             re.IGNORECASE)
SEGMENT_DASH = re.compile(r"^(?:đoạn\s+)?(?:từ\s+)?(.+?)\s+[-–—]\s+(.+)$", re.IGNORECASE)
# Longest text a segment's labels may have: a longer one is a paragraph pasted into a
# cell (or cells run together), not a road name.
MAX_TEXT = {"road_name": 200, "from_desc": 300, "to_desc": 300, "road_class": 20}


def segment_key(road: str, start: str | None, end: str | None,
                place: str | None = None) -> str:
    """How a row and a geometry find each other: road|from|to, case, diacritics and
    spacing folded; ``@commune`` after it for a row under a commune's heading (the same
    road may be listed under each ward it crosses)."""
    key = "|".join(normalise_name(v or "") for v in (road, start, end))
    return f"{key}@{place}" if place else key


def fold(text: str) -> str:
    """Lower case without diacritics (đ -> d), spaces kept: for reading phrases."""
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return " ".join("".join(ch for ch in text if unicodedata.category(ch) != "Mn")
                    .lower().split())


def split_segment(text: str | None) -> tuple[str | None, str | None]:
    """(from, to) of a segment written in one column.

    "Từ đường A đến đường B" / "Đoạn từ A đến B" / "A - B" -> (A, B); "Cả đường",
    "Toàn tuyến", "Trọn đường" (the whole road) -> (None, None); anything else is kept
    whole as the from part, so two different wordings never collapse into one segment.
    """
    if text is None:
        return None, None
    text = " ".join(text.split())
    if normalise_name(text) in WHOLE_ROAD:
        return None, None
    for pattern in (SEGMENT_FROM_TO, SEGMENT_DASH):
        m = pattern.match(text)
        if m:
            return m.group(1).strip(" ,;:"), m.group(2).strip(" ,;:.")
    return text, None


def cross_section(text: str | None) -> tuple[float | None, float | None] | None:
    """(min inclusive, max exclusive) metres of a cross-section phrase ("mặt cắt từ 15m đến
    dưới 25m", "mặt cắt >= 25 m", "lòng đường dưới 5,5m"), or None when the text names no
    width."""
    if not text:
        return None
    folded = fold(text)
    if not WIDTH_WORDS.search(folded):
        return None
    for pattern, kind in WIDTH_RANGES:
        m = pattern.search(folded)
        if m is None:
            continue
        values = [float(v.replace(",", ".")) for v in m.groups()]
        if kind == "range" and values[1] > values[0]:
            return values[0], values[1]
        if kind == "min":
            return values[0], None
        if kind == "max":
            return 0.0, values[0]
    return None


def is_remaining(text: str | None) -> bool:
    """"Các đường còn lại", "Các tuyến đường chưa có tên": the roads no row names."""
    return bool(text) and bool(REMAINING.search(fold(text)))


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
    kind: str = "road"  # road | remaining | cross_section
    commune_code: str | None = None
    width_min_m: float | None = None
    width_max_m: float | None = None
    section: str | None = None
    segment_text: str | None = None


@dataclass
class Section:
    """What the section rows above a row say about it: where, and for unnamed roads of
    which cross-section."""

    district: str | None = None
    commune: str | None = None
    width: tuple[float | None, float | None] | None = None
    text: str | None = None


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
    # (land type, folded road class) -> prices, from the road_classes sheets
    class_prices: dict[tuple[str, str], tuple[str, int, list[int]]] = field(
        default_factory=dict)
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
    # normalised commune name (with and without 'Phường', 'Xã', 'Thị trấn') -> code: the
    # units of the table's date (2025 communes for a table effective since 1 July 2025)
    commune_names: dict[str, str] = field(default_factory=dict)


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
        section = Section()
        one_column = "segment" in self.header.columns and not (
            "from_desc" in self.header.columns or "to_desc" in self.header.columns)
        for r in self.data_rows():
            texts = self.texts(r)
            if not texts:
                continue  # blank, or a note in the STT column only
            if self._is_section(r, texts):
                section = self._section(texts.pop(), section)
                road = None
                continue
            name = self.text(r, "road_name")
            written = self.text(r, "segment") if one_column else None
            if one_column:
                start, end = split_segment(written)
            else:
                start, end = self.text(r, "from_desc"), self.text(r, "to_desc")
            out.rows_read += 1
            if self._too_long(r):
                continue
            if name:
                road = name
            elif road is None:
                self.reject(r, "road_name", "road name missing")
                continue
            kind, width = "road", None
            row_width = cross_section(road) or cross_section(written)
            if row_width is not None or section.width is not None:
                kind, width = "cross_section", row_width or section.width
            elif is_remaining(road):
                kind = "remaining"
            if kind != "road" and section.commune is None and section.district is None:
                self.reject(r, "road_name", "a row for unnamed or remaining roads must be "
                            "under a section row naming its commune, ward or district",
                            road)
                continue
            place = section.commune or (section.district if kind != "road" else None)
            key = segment_key(road, start, end, place)
            if kind == "cross_section":
                key += f"#{width[0] or 0:g}-{'' if width[1] is None else f'{width[1]:g}'}"
            out.kept_segment_keys.add((land, key))
            if key in seen:
                # Which of the two is right? Neither is loaded; both are named.
                for this, other in ((r, seen[key]), (seen[key], r)):
                    self.reject(this, "road_name", f"duplicate segment: row {other + 1} of "
                                "this sheet prices the same road and segment"
                                + (f" under {section.text!r}" if section.text else ""),
                                f"{road} | {start or ''} | {end or ''}")
                duplicates.add(key)
                continue
            seen[key] = r
            road_class = self.text(r, "road_class")
            prices = self._class_prices(r, land, road_class) or self.prices(r)
            if prices is None:
                continue
            mine.append(SegmentRow(
                self.name, r + 1, key, road, start, end, road_class, section.district, land,
                prices, kind, section.commune, width[0] if width else None,
                width[1] if width else None, section.text, written))
        out.segments += [s for s in mine if s.key not in duplicates]

    def _has_prices(self, r: int) -> bool:
        return any(not is_blank(self.value(r, f"p{p}")) for p in self.positions)

    def _is_section(self, r: int, texts: set[str]) -> bool:
        """One text and no price of its own (a heading merged across the price columns
        fills them with itself): "PHƯỜNG HẢI CHÂU", "I. QUẬN BA ĐÌNH", "Mặt cắt ..."."""
        if len(texts) != 1:
            return False
        (only,) = texts
        return all(is_blank(v) or " ".join(str(v).split()) == only
                   for v in (self.value(r, f"p{p}") for p in self.positions))

    def _class_prices(self, r: int, land: str, road_class: str | None) -> list[int] | None:
        """The road class's prices for a row that states a class and no price: the
        ``road_classes`` sheet of the land type is what the row refers to."""
        if road_class is None or self._has_prices(r):
            return None
        found = self.out.class_prices.get((land, normalise_name(road_class)))
        if found is None:
            known = sorted(c for lt, c in self.out.class_prices if lt == land)
            self.reject(r, "road_class", f"no prices in the row and road class "
                        f"{road_class!r} is not in a road_classes sheet of {land}"
                        + (f" (classes: {', '.join(known)})" if known else ""), road_class)
            return None
        sheet, row, prices = found
        if len(prices) < len(self.positions):
            self.reject(r, "road_class", f"road class {road_class!r} (sheet {sheet!r} row "
                        f"{row}) has {len(prices)} positions, this sheet "
                        f"{len(self.positions)}", road_class)
            return None
        return prices[:len(self.positions)]

    def _section(self, text: str, current: Section) -> Section:
        """What a section row says: a commune or district heading sets the place (and
        ends any cross-section band); a cross-section heading sets the width band of the
        unnamed roads listed under it, in the place already set."""
        bare = normalise_name(HEADING_PREFIX.sub("", text))
        commune = self.ctx.commune_names.get(bare)
        if commune is None:  # "... thuộc phường Ba Đình": the unit's full name ends it
            commune = next((c for name, c in self.ctx.commune_names.items()
                            if name.startswith(UNIT_WORDS) and bare.endswith(name)), None)
        if commune is not None:
            return Section(current.district, commune, None, text)
        district = self.ctx.districts.get(bare)
        if district is not None:
            return Section(district, None, None, text)
        width = cross_section(text)
        if width is not None:
            return Section(current.district, current.commune, width, text)
        return Section(current.district, current.commune, None, text)

    def road_classes(self) -> None:
        """A road-class sheet: one row per class (loại đường) of the sheet's land type."""
        land, out = self.spec.land_type, self.out
        seen: dict[str, int] = {}
        for r in self.data_rows():
            if len(self.texts(r)) <= 1:
                continue
            out.rows_read += 1
            raw = self.text(r, "road_class")
            if raw is None:
                self.reject(r, "road_class", "road class missing")
                continue
            norm = normalise_name(raw)
            if norm in seen or (land, norm) in out.class_prices:
                self.reject(r, "road_class", f"duplicate road class {raw!r}", raw)
                continue
            seen[norm] = r
            prices = self.prices(r)
            if prices is not None:
                out.class_prices[(land, norm)] = (self.name, r + 1, prices)

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
    """Parse every sheet the sidecar names; LoadError when one is missing or headerless.

    Road-class sheets are read first: the segments sheets refer to them. A sheet's own
    ``columns:`` headings are added to ``mapping`` (the table's already are) for it alone.
    """
    out = ParsedTable()
    for spec in sorted(specs, key=lambda s: s.role != "road_classes"):
        grid = grids.get(spec.sheet) if spec.sheet is not None else next(iter(grids.values()))
        if grid is None:
            raise LoadError(file, f"sheet {spec.sheet!r} named in the sidecar is not in the "
                                  f"workbook (sheets: {', '.join(grids)})")
        sheet_mapping = mapping.extended(spec.columns, spec.replace) if spec.columns \
            else mapping
        header = find_header(grid, sheet_mapping, required[spec.role], file,
                             first_row=None if spec.header_row is None
                             else spec.header_row - 1)
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
