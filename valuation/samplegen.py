"""Deterministic sample price tables that match the sample districts' parcels.

Why synthetic: the real 2026 tables are long decisions whose rows name real roads the
synthetic parcels do not have. The loader, the valuation engine and their tests need tables
in the real provincial layout whose roads run along the sample parcels' edges, so that
"a parcel on Đường Trần Phú, position 1" is a fact that can be checked by hand.

Roads: the sample parcels are a town per district (``cadastre.town``), its streets
parcels of their own. Each district's table draws four of the town's main roads (two
east-west, two north-south; ``ROADS``, real street names of the district) along their
centrelines, clipped to where the road is land (West Lake takes some of Tây Hồ's), each
split into two priced segments where it meets the first road of the other direction; the
lots round a crossing front two roads (two-frontage rule). The alleys' widths
(``be_rong_ngo_2026.csv``) are the town's alleys, recorded for every lot on one.

Files (``--out``, default ``data/samples/prices``):
- ``bang_gia_dat_ha_noi_2026.xlsx`` and ``bang_gia_dat_da_nang_2026.xlsx``: the provincial
  layout: urban sheets (STT | Tên đường | Đoạn đường: Từ | Đến | Loại đường | VT1..VT4 under
  a merged "Giá đất (đồng/m²)"), road names merged down over their segments, a district
  heading row per district, prices typed as Vietnamese text ("1.200.000") in some rows and
  as numbers in others; residential (ODT), commercial/service (TMD), production (SKC); a
  rural residential matrix (Khu vực 1..3 x Vị trí 1..4), an agricultural sheet (land type x
  area class x position) and the communes' area classes;
- ``<stem>.prices.yaml`` sidecars naming the table, its sheets, rules and coefficients K;
- ``doan_duong_ha_noi.gpkg`` (WGS84) and ``doan_duong_da_nang.shp`` (VN-2000 TM-3, EPSG:5899):
  the segment geometries; ``vung_gia_tri_da_nang.gpkg``: one value zone with its standard
  parcel;
- ``bang_gia_dat_da_nang_2026_dat_o.csv`` (+ sidecar): the Đà Nẵng residential sheet as a
  CSV export (merged cells empty), same table: loading it after the workbook changes nothing;
- ``manifest.json``: the deliveries in load order, and the roads per district.

Run ``python -m valuation.samplegen --out data/samples/prices``. No randomness: prices and
road positions are fixed fractions and figures below, so the output is the same on every run
(workbooks are re-zipped with fixed timestamps so the bytes are too).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import shapely
import yaml
from openpyxl.utils import get_column_letter
from pyogrio.raw import write as ogr_write
from pyproj import CRS

from cadastre.samplegen import DEFAULT_SEED as PARCEL_SEED
from cadastre.samplegen import FIXED_FILE_DATE, fixed_file_dates
from cadastre.town import Town, build_town, sheet_numbers
from etl.geometry import transform
from valuation.meta import DEFAULT_RULES

PROJECT_DIR = Path(__file__).resolve().parent.parent
SAMPLES_DIR = PROJECT_DIR / "data" / "samples"
DEFAULT_OUT = SAMPLES_DIR / "prices"
WGS84 = CRS.from_epsg(4326)

POSITION_SHARES = (1.0, 0.50, 0.40, 0.32)  # VT2..VT4 as shares of VT1 (domain.md: fixed shares)
LAND_TYPE_SHARES = {"ODT": 1.0, "TMD": 0.80, "SKC": 0.60}
SECOND_SEGMENT = 0.88  # the far segment of a road is priced lower


@dataclass(frozen=True)
class Road:
    name: str
    road_class: str
    vt1_million: float  # VT1 of the first segment, millions of VND/m²


# district -> (east-west road 1, 2, north-south road 1, 2): main roads of the sample town
# (``cadastre.town.TOWNS``), real street names of the district.
ROADS: dict[str, tuple[Road, Road, Road, Road]] = {
    "001": (Road("Đường Hoàng Hoa Thám", "1b", 152.0), Road("Phố Kim Mã", "1a", 187.5),
            Road("Phố Liễu Giai", "1b", 129.8), Road("Phố Đội Cấn", "2a", 118.6)),
    "003": (Road("Đường Lạc Long Quân", "2a", 98.4), Road("Đường Thụy Khuê", "2a", 86.2),
            Road("Đường Âu Cơ", "2b", 72.5), Road("Phố Xuân Diệu", "1b", 110.3)),
    "492": (Road("Đường Trần Phú", "1a", 85.6), Road("Đường Lê Duẩn", "1a", 79.2),
            Road("Đường Nguyễn Văn Linh", "1b", 68.8), Road("Đường Bạch Đằng", "1a", 98.8)),
    "491": (Road("Đường Điện Biên Phủ", "1b", 64.3), Road("Đường Hà Huy Tập", "2a", 52.7),
            Road("Đường Lê Độ", "2b", 41.9), Road("Đường Nguyễn Tất Thành", "1b", 57.6)),
}


@dataclass(frozen=True)
class Province:
    code: str
    name: str
    slug: str
    table_code: str
    instrument: str
    districts: tuple[str, ...]
    segments_file: str
    segments_epsg: int
    rural_scale: float
    rules: dict
    coefficients: tuple[dict, ...] = ()
    # 2025 ward code -> (name, pre-2025 districts whose drawn roads it lists, the roads
    # only the table names: (name, road class, number of segments))
    wards: dict[str, tuple[str, tuple[str, ...], tuple[tuple[str, str, int], ...]]] = field(
        default_factory=dict)
    one_column: bool = False  # the segment in one column ("Từ X đến Y"), road-class sheets
    land_types: tuple[str, ...] = ("ODT", "TMD", "SKC")
    class_vt1: dict[str, float] = field(default_factory=dict)  # millions VND/m²
    cross_vt1: float = 0.0  # VT1 of the narrowest unnamed roads, millions
    remaining_vt1: float = 0.0  # VT1 of "the remaining roads", millions
    columns: dict[str, list[str]] = field(default_factory=dict)  # sidecar's own headings


# Positions by alley width (domain.md): the sample tables state the usual widths, the
# distance bands where no width is recorded, and VT1 for the rows no geometry draws.
POSITION_WIDTH = {"alley": [{"position": 2, "min_width_m": 3.5},
                            {"position": 3, "min_width_m": 2},
                            {"position": 4, "min_width_m": 0}],
                  "fallback": "distance", "undrawn_position": 1}
# Positions by distance from the segment line (the road's centreline): the frontage band
# reaches the lots on a main road (half its 20-24 m plus a metre); Hà Nội's table reaches
# 150 m, so the town's far corners fall to the rows no geometry draws (unnamed roads by
# cross-section, the remaining roads), Đà Nẵng's the default 450 m.
FRONTAGE_M = 13
BANDS_HN = {"segment": [{"position": 1, "max_m": FRONTAGE_M}, {"position": 2, "max_m": 60},
                        {"position": 3, "max_m": 100}, {"position": 4, "max_m": 150}],
            "area": DEFAULT_RULES["position_band"]["area"]}
BANDS_DN = {"segment": [{"position": 1, "max_m": FRONTAGE_M}, {"position": 2, "max_m": 150},
                        {"position": 3, "max_m": 300}, {"position": 4, "max_m": 450}],
            "area": DEFAULT_RULES["position_band"]["area"]}
CROSS_SECTIONS = ((0.0, 5.5), (5.5, 10.5), (10.5, 15.0), (15.0, 25.0), (25.0, None))
# The Hà Nội sample writes the segment in one column under this heading, which the
# package's mapping does not know: its sidecar teaches it (``columns: segment: [...]``).
SEGMENT_HEADING = "Đoạn đường (từ ... đến ...)"
HN_WARDS = {
    "00004": ("Phường Ba Đình", ("001",), (
        ("Phố Điện Biên Phủ", "1A", 3), ("Phố Hùng Vương", "1A", 2),
        ("Phố Phan Đình Phùng", "1A", 3), ("Phố Quán Thánh", "1B", 2),
        ("Phố Nguyễn Cảnh Chân", "2B", 1), ("Phố Lê Hồng Phong", "1B", 2),
        ("Phố Hoàng Diệu", "1B", 1), ("Phố Chu Văn An", "2A", 2),
        ("Phố Trần Phú", "1B", 2))),
    "00008": ("Phường Ngọc Hà", (), (
        ("Phố Ngọc Hà", "2A", 3), ("Phố Văn Cao", "1B", 2), ("Phố Đào Tấn", "2A", 2),
        ("Phố Vạn Bảo", "3A", 1), ("Phố Đội Cấn", "2A", 2), ("Phố Linh Lang", "3A", 2),
        ("Phố Nguyễn Văn Ngọc", "3B", 1))),
    "00025": ("Phường Giảng Võ", (), (
        ("Phố Giảng Võ", "1A", 3), ("Phố Nguyễn Thái Học", "1B", 2),
        ("Phố Cát Linh", "2A", 2), ("Phố Hào Nam", "2A", 2), ("Phố Trần Huy Liệu", "2A", 1),
        ("Phố Ngọc Khánh", "2B", 2), ("Đường Nguyễn Chí Thanh", "1A", 2))),
    "00097": ("Phường Hồng Hà", (), (
        ("Đường Yên Phụ", "1B", 3), ("Phố Phúc Xá", "3A", 1), ("Phố Nghĩa Dũng", "3A", 1),
        ("Đường Hồng Hà", "2B", 2), ("Phố Hàng Than", "2A", 1), ("Đường Âu Cơ", "2B", 2))),
    "00103": ("Phường Tây Hồ", ("003",), (
        ("Đường Võ Chí Công", "1B", 3), ("Phố Quảng An", "2A", 2),
        ("Phố Tô Ngọc Vân", "2A", 2), ("Phố Đặng Thai Mai", "2B", 1),
        ("Phố Tứ Liên", "3A", 2))),
    "00091": ("Phường Phú Thượng", (), (
        ("Đường An Dương Vương", "2B", 3), ("Phố Phú Thượng", "3A", 2),
        ("Phố Phú Gia", "3B", 1), ("Đường Nhật Tân", "3A", 2))),
}
DN_WARDS = {
    "20242": ("Phường Hải Châu", ("492",), ()),
    "20257": ("Phường Hòa Cường", (), ()),
    "20209": ("Phường Thanh Khê", ("491",), ()),
    "20305": ("Phường An Khê", (), ()),
}
PROVINCES = (
    Province("01", "Thành phố Hà Nội", "ha_noi", "HN-2026",
             "Quyết định 99/2025/QĐ-UBND (dữ liệu mẫu)", ("001", "003"),
             "doan_duong_ha_noi.gpkg", 4326, 1.0,
             {**DEFAULT_RULES, "position_width": POSITION_WIDTH, "position_band": BANDS_HN},
             ({"year": 2026, "land_type": "ODT", "commune_code": "00004", "position": 1,
               "k": 1.05, "instrument": "Quyết định 13/2026/QĐ-UBND hệ số K (dữ liệu mẫu)"},),
             HN_WARDS, one_column=True, land_types=("ODT", "TMD"),
             class_vt1={"1A": 142.0, "1B": 118.0, "2A": 96.0, "2B": 78.0, "3A": 61.0,
                        "3B": 49.0},
             cross_vt1=28.0, remaining_vt1=35.0,
             columns={"segment": [SEGMENT_HEADING]}),
    Province("48", "Thành phố Đà Nẵng", "da_nang", "DN-2026",
             "Quyết định 88/2025/QĐ-UBND (dữ liệu mẫu)", ("492", "491"),
             "doan_duong_da_nang.shp", 5899, 0.8,
             {**DEFAULT_RULES, "two_frontages": {"pct": 115, "min_roads": 2},
              "position_width": POSITION_WIDTH, "position_band": BANDS_DN},
             ({"year": 2026, "land_type": "TMD", "commune_code": "20242", "k": 1.1,
               "instrument": "Quyết định 12/2026/QĐ-UBND hệ số K (dữ liệu mẫu)"},),
             DN_WARDS, remaining_vt1=21.0),
)
RURAL_ONT_MILLION = ((18.0, 12.6, 9.9, 7.2), (14.0, 9.8, 7.7, 5.6), (10.0, 7.0, 5.5, 4.0))
AGRICULTURAL = (("LUC", "Đất trồng lúa", 252_000), ("HNK", "Đất trồng cây hằng năm khác",
                                                     236_000),
                ("CLN", "Đất trồng cây lâu năm", 302_000),
                ("NTS", "Đất nuôi trồng thủy sản", 218_000))
ZONE_DISTRICT = "491"
PROVINCE_OF = {"001": "01", "003": "01", "491": "48", "492": "48"}
ZONE_AT = (0.70, 0.25)  # the value zone: the block nearest this point (shares of the town)
ZONE_PRICE = 45_500_000
EFFECTIVE = ("2026-01-01", "2026-12-31")


def vnd(million: float) -> int:
    return int(round(million * 1_000_000 / 1000) * 1000)


def vn_text(amount: int) -> str:
    """1200000 -> '1.200.000' (how Vietnamese documents write amounts)."""
    return f"{amount:,}".replace(",", ".")


# --------------------------------------------------------------------------- the town
def _land_line(town: Town, name: str) -> shapely.LineString:
    """The centreline of the town's main road ``name`` where the town is land, the longest
    stretch if water cuts it."""
    line = next(ln.geom for ln in town.lines if ln.name == name and ln.kind == "main")
    land = shapely.intersection(line, shapely.coverage_union_all(
        town.geoms[town.kind != "water"]))
    parts = [g for g in shapely.get_parts(shapely.line_merge(land))
             if g.geom_type == "LineString"]
    return max(parts, key=lambda g: g.length)


def _split(line: shapely.LineString, at: float, axis: int
           ) -> tuple[shapely.LineString, shapely.LineString]:
    """The line cut where coordinate ``axis`` is ``at`` (its middle if ``at`` is off it);
    first part west / north, as the roads run from their start."""
    coords = np.asarray(line.coords)
    lo, hi = coords[:, axis].min(), coords[:, axis].max()
    if not lo < at < hi:
        at = (lo + hi) / 2
    a = shapely.clip_by_rect(line, *((lo - 1, -1e9, at, 1e9) if axis == 0
                                     else (-1e9, at, 1e9, hi + 1)))
    b = shapely.clip_by_rect(line, *((at, -1e9, hi + 1, 1e9) if axis == 0
                                     else (-1e9, lo - 1, 1e9, at)))
    return shapely.line_merge(a), shapely.line_merge(b)


@dataclass(frozen=True)
class Segment:
    district: str
    road: Road
    index: int  # 0 or 1
    from_desc: str
    to_desc: str
    line: shapely.LineString  # in the district file's CRS

    @property
    def vt1(self) -> int:
        return vnd(self.road.vt1_million * (1 if self.index == 0 else SECOND_SEGMENT))

    def prices(self, land_type: str) -> list[int]:
        base = self.vt1 * LAND_TYPE_SHARES[land_type]
        return [vnd(base * s / 1_000_000) for s in POSITION_SHARES]


def district_segments(code: str, town: Town) -> list[Segment]:
    """The drawn segments of a district (TM-3): its four ROADS on the town, each in two at
    its crossing with the first road of the other direction."""
    h1, h2, v1, v2 = ROADS[code]
    lines = {r.name: _land_line(town, r.name) for r in ROADS[code]}
    x_cross = lines[v1.name].coords[0][0]
    y_cross = lines[h1.name].coords[0][1]
    out = []
    for road, axis, at, cross in ((h1, 0, x_cross, v1), (h2, 0, x_cross, v1),
                                  (v1, 1, y_cross, h1), (v2, 1, y_cross, h1)):
        first, second = _split(lines[road.name], at, axis)
        text = f"Giao {cross.name}"
        out.append(Segment(code, road, 0, "Đầu đường", text, first))
        out.append(Segment(code, road, 1, text, "Cuối đường", second))
    return out


# --------------------------------------------------------------------------- workbook
class SheetWriter:
    """Writes one sheet both as an openpyxl worksheet (with merges) and as CSV rows
    (merged cells empty but for their first cell, as Excel exports them). A formula cell
    is written with its formula and remembered with its value, which ``_stable_zip``
    stores as the cached value Excel would have saved (openpyxl computes nothing)."""

    def __init__(self, ws, width: int) -> None:  # noqa: ANN001 - openpyxl worksheet
        self.ws = ws
        self.width = width
        self.rows: list[list[object]] = []
        self.cached: dict[str, int] = {}  # cell address -> value of its formula

    def row(self, values: list[object]) -> int:
        values = list(values) + [None] * (self.width - len(values))
        r = len(self.rows) + 1
        plain = []
        for c, v in enumerate(values, start=1):
            if isinstance(v, Formula):
                cell = self.ws.cell(r, c, v.text)
                cell.number_format = "#,##0"
                self.cached[cell.coordinate] = v.value
                plain.append(v.value)
                continue
            plain.append(v)
            if v is not None:
                cell = self.ws.cell(r, c, v)
                if isinstance(v, int):
                    cell.number_format = "#,##0"
        self.rows.append(plain)
        return r

    def merge(self, r0: int, c0: int, r1: int, c1: int) -> None:
        self.ws.merge_cells(start_row=r0, start_column=c0, end_row=r1, end_column=c1)
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                if (r, c) != (r0, c0):
                    self.rows[r - 1][c - 1] = None

    def title(self, text: str, subtitle: str) -> None:
        self.row([text])
        self.merge(1, 1, 1, self.width)
        self.row([subtitle])
        self.merge(2, 1, 2, self.width)

    def heading(self, numeral: str, text: str) -> None:
        """A section row: STT, then the heading merged across the rest of the row."""
        r = self.row([numeral, text])
        self.merge(r, 2, r, self.width)


@dataclass(frozen=True)
class Formula:
    """A formula and the value Excel computes for it (stored as the cell's cached value)."""

    text: str
    value: int


def _price_cell(amount: int, as_text: bool) -> object:
    return vn_text(amount) if as_text else amount


def excel_round_thousands(value: Decimal) -> int:
    """Excel's ROUND(x, -3): half away from zero."""
    return int((value / 1000).quantize(Decimal(1), ROUND_HALF_UP)) * 1000


def share_price(odt: int, land_type: str) -> int:
    """A land type's price from the ODT cell: =ROUND(ODT * share, -3)."""
    return excel_round_thousands(Decimal(odt) * Decimal(str(LAND_TYPE_SHARES[land_type])))


def class_prices(province: Province, road_class: str, land_type: str) -> list[int]:
    odt = [vnd(province.class_vt1[road_class] * s) for s in POSITION_SHARES]
    return [share_price(p, land_type) for p in odt] if land_type != "ODT" else odt


@dataclass
class Row:
    """One priced row of the urban sheets, as the province writes it."""

    ward: str  # 2025 commune code of its heading
    road: str
    from_desc: str | None
    to_desc: str | None
    segment_text: str | None  # the one-column wording
    road_class: str | None
    odt: list[int]  # ODT prices by position (what the row is worth)
    how: str  # typed | text | formula | class (blank cells: the road class's prices)
    kind: str = "road"  # road | cross_section | remaining
    drawn: Segment | None = None


def _segment_texts(cross: list[str]) -> list[tuple[str | None, str | None, str]]:
    """(from, to, one-column text) of a road's segments between the cross streets."""
    n = len(cross) - 1
    if n == 1:
        return [(None, None, "Cả đường" if len(cross[0]) % 2 else "Toàn tuyến")]
    out = []
    for i in range(n):
        a, b = cross[i], cross[i + 1]
        if i == n - 1:
            out.append((a, "hết đường", f"Từ {a} đến hết đường"))
        elif i == 0:
            out.append((a, b, f"Từ {a} đến {b}"))
        else:
            out.append((a, b, f"Đoạn từ {a} đến {b}"))
    return out


def urban_rows(province: Province, segments: list[Segment]) -> list[Row]:
    """The urban rows of a province, ward by ward: the drawn segments (roads along the
    sample parcels), the roads only the table names, the unnamed roads by cross-section
    and "the remaining roads"."""
    rows: list[Row] = []
    n = 0
    for ward, (_name, districts, paper) in province.wards.items():
        for s in segments:
            if s.district in districts:
                text = f"Từ {s.from_desc} đến {s.to_desc}"
                odt = s.prices("ODT")
                rows.append(Row(ward, s.road.name, s.from_desc, s.to_desc, text,
                                s.road.road_class, odt, "text" if (n + s.index) % 2 == 0
                                else "typed", drawn=s))
                n += 1
        pool = [name for name, _, _ in paper] + [r.name for d in districts
                                                  for r in ROADS.get(d, ())]
        for k, (road, road_class, count) in enumerate(paper):
            cross = [pool[(k + j * 3 + 1) % len(pool)] for j in range(count + 1)]
            cross = [c if c != road else pool[(k + 7) % len(pool)] for c in cross]
            for j, (a, b, text) in enumerate(_segment_texts(cross)):
                how = ("formula", "class", "typed")[(k + j) % 3]
                odt = class_prices(province, road_class, "ODT")
                if how == "typed":  # a segment the province prices above its class
                    odt = [vnd(p * 1.08 / 1_000_000) for p in odt]
                rows.append(Row(ward, road, a, b, text, road_class, odt, how))
        for low, high in (CROSS_SECTIONS if province.one_column else ()):
            vt1 = province.cross_vt1 * (1 + 0.35 * CROSS_SECTIONS.index((low, high)))
            rows.append(Row(ward, cross_section_text(low, high), None, None, None, None,
                            [vnd(vt1 * s) for s in POSITION_SHARES], "typed",
                            kind="cross_section"))
        rows.append(Row(ward, "Các đường còn lại", None, None, None, None,
                        [vnd(province.remaining_vt1 * s) for s in POSITION_SHARES], "typed",
                        kind="remaining"))
    return rows


def cross_section_text(low: float, high: float | None) -> str:
    def m(x: float) -> str:
        return f"{x:g}".replace(".", ",") + "m"
    if low == 0:
        return f"Mặt cắt dưới {m(high)}"
    if high is None:
        return f"Mặt cắt từ {m(low)} trở lên"
    return f"Mặt cắt từ {m(low)} đến dưới {m(high)}"


def row_prices(row: Row, land_type: str) -> list[int]:
    return row.odt if land_type == "ODT" else [share_price(p, land_type) for p in row.odt]


def write_urban_sheet(sheet: SheetWriter, province: Province, title: str, rows: list[Row],
                      land_type: str, class_sheet: str) -> dict[int, Row]:
    """The urban sheet in the province's layout; returns sheet row number -> row."""
    sheet.title(title, f"(Kèm theo {province.instrument} của UBND {province.name})")
    one = province.one_column
    if one:
        head = ["STT", "Tên đường phố", SEGMENT_HEADING, "Loại đường", "Giá đất (đồng/m²)"]
        r = sheet.row(head)
        sheet.row([None, None, None, None, "VT1", "VT2", "VT3", "VT4"])
        for c in (1, 2, 3, 4):
            sheet.merge(r, c, r + 1, c)
        sheet.merge(r, 5, r, 8)
        first_price = 5
    else:
        r = sheet.row(["STT", "Tên đường phố", "Đoạn đường", None, "Loại đường",
                       "Giá đất (đồng/m²)"])
        sheet.row([None, None, "Từ", "Đến", None, "VT1", "VT2", "VT3", "VT4"])
        sheet.merge(r, 1, r + 1, 1)
        sheet.merge(r, 2, r + 1, 2)
        sheet.merge(r, 3, r, 4)
        sheet.merge(r, 5, r + 1, 5)
        sheet.merge(r, 6, r, 9)
        first_price = 6
    numerals = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII")
    out: dict[int, Row] = {}
    ward_no = -1
    n = 0
    current: tuple[str, str] | None = None
    group: list[int] = []
    unnamed_heading = None

    def close_group() -> None:
        if len(group) > 1:  # STT and road name merged down over a road's segments
            sheet.merge(group[0], 1, group[-1], 1)
            sheet.merge(group[0], 2, group[-1], 2)

    for row in rows:
        if not out or list(out.values())[-1].ward != row.ward:
            close_group()
            group, current, unnamed_heading = [], None, None
            ward_no += 1
            sheet.heading(numerals[ward_no], province.wards[row.ward][0].upper())
        if row.kind == "cross_section" and unnamed_heading is None:
            close_group()
            group, current = [], None
            unnamed_heading = (f"Các tuyến đường chưa có tên trong khu dân cư thuộc "
                               f"{province.wards[row.ward][0]}")
            sheet.heading("", unnamed_heading)
        if (row.ward, row.road) != current:
            close_group()
            group, current = [], (row.ward, row.road)
            n += 1
            stt: object = n
        else:
            stt = None
        prices: list[object] = []
        for p, amount in enumerate(row_prices(row, land_type)):
            col = get_column_letter(first_price + p)
            if row.how == "class":
                prices.append(None)
            elif land_type != "ODT":
                prices.append(Formula(f"=ROUND('{SHEETS['ODT'][0]}'!{col}{len(sheet.rows) + 1}"
                                      f"*{LAND_TYPE_SHARES[land_type]},-3)", amount))
            elif row.how == "formula":
                prices.append(Formula(
                    f"=VLOOKUP(${'D' if one else 'E'}{len(sheet.rows) + 1},"
                    f"'{class_sheet}'!$B$5:$F$20,{p + 2},FALSE)", amount))
            else:
                prices.append(_price_cell(amount, row.how == "text"))
        label = [row.segment_text] if one else [row.from_desc, row.to_desc]
        r = sheet.row([stt, row.road, *label, row.road_class, *prices])
        group.append(r)
        out[r] = row
    close_group()
    sheet.ws.column_dimensions["B"].width = 30
    sheet.ws.column_dimensions["C"].width = 44 if one else 26
    return out


def write_class_prices_sheet(sheet: SheetWriter, province: Province, land_type: str) -> None:
    """Prices by road class (loại đường), which the urban sheets refer to."""
    sheet.title(f"BẢNG GIÁ ĐẤT THEO LOẠI ĐƯỜNG ({SHEETS[land_type][1]})",
                f"(Kèm theo {province.instrument} của UBND {province.name})")
    r = sheet.row(["STT", "Loại đường", "Giá đất (đồng/m²)"])
    sheet.row([None, None, "VT1", "VT2", "VT3", "VT4"])
    sheet.merge(r, 1, r + 1, 1)
    sheet.merge(r, 2, r + 1, 2)
    sheet.merge(r, 3, r, 6)
    for k, road_class in enumerate(province.class_vt1, start=1):
        sheet.row([k, road_class, *class_prices(province, road_class, land_type)])


def write_rural_sheet(sheet: SheetWriter, province: Province) -> None:
    sheet.title("BẢNG GIÁ ĐẤT Ở TẠI NÔNG THÔN",
                f"(Kèm theo {province.instrument} của UBND {province.name})")
    r = sheet.row(["STT", "Khu vực", "Giá đất (đồng/m²)"])
    sheet.row([None, None, "Vị trí 1", "Vị trí 2", "Vị trí 3", "Vị trí 4"])
    sheet.merge(r, 1, r + 1, 1)
    sheet.merge(r, 2, r + 1, 2)
    sheet.merge(r, 3, r, 6)
    for k, prices in enumerate(RURAL_ONT_MILLION, start=1):
        sheet.row([k, f"Khu vực {k}",
                   *[_price_cell(vnd(p * province.rural_scale), k == 2) for p in prices]])


def agricultural_price(base: int, area_class: int, position: int) -> int:
    return int(round(base * (0.9 ** (area_class - 1)) * (1 - 0.1 * (position - 1)), -3))


def write_agricultural_sheet(sheet: SheetWriter, province: Province) -> None:
    sheet.title("BẢNG GIÁ ĐẤT NÔNG NGHIỆP",
                f"(Kèm theo {province.instrument} của UBND {province.name})")
    r = sheet.row(["STT", "Loại đất", "Mã loại đất", "Khu vực", "Giá đất (đồng/m²)"])
    sheet.row([None, None, None, None, "VT1", "VT2", "VT3", "VT4"])
    for c in (1, 2, 3, 4):
        sheet.merge(r, c, r + 1, c)
    sheet.merge(r, 5, r, 8)
    for n, (code, name, base) in enumerate(AGRICULTURAL, start=1):
        first = None
        for area in (1, 2, 3):
            row = sheet.row([n, name, code, f"Khu vực {area}",
                             *[_price_cell(agricultural_price(base, area, p), area == 3)
                               for p in (1, 2, 3, 4)]])
            first = first or row
        for c in (1, 2, 3):
            sheet.merge(first, c, first + 2, c)


def area_classes(communes: list[tuple[str, str]]) -> list[tuple[str, str, int]]:
    """Communes in code order: the first third area class 1, the next 2, the rest 3."""
    n = len(communes)
    return [(code, name, 1 + (3 * i) // n) for i, (code, name) in enumerate(communes)]


def write_class_sheet(sheet: SheetWriter, province: Province,
                      classes: list[tuple[str, str, int]]) -> None:
    sheet.title("PHÂN KHU VỰC XÃ, PHƯỜNG", f"(Kèm theo {province.instrument})")
    sheet.row(["STT", "Mã xã", "Tên xã, phường", "Khu vực"])
    for n, (code, name, area) in enumerate(classes, start=1):
        sheet.row([n, code, name, area])


SHEETS = {
    "ODT": ("Đất ở đô thị", "BẢNG GIÁ ĐẤT Ở TẠI ĐÔ THỊ"),
    "TMD": ("Đất TMDV đô thị", "BẢNG GIÁ ĐẤT THƯƠNG MẠI, DỊCH VỤ TẠI ĐÔ THỊ"),
    "SKC": ("Đất SXKD đô thị", "BẢNG GIÁ ĐẤT CƠ SỞ SẢN XUẤT PHI NÔNG NGHIỆP TẠI ĐÔ THỊ"),
}
CLASS_SHEETS = {"ODT": "Giá theo loại đường ODT", "TMD": "Giá theo loại đường TMDV"}
RURAL_SHEET, AGRI_SHEET, CLASS_SHEET = "Đất ở nông thôn", "Đất nông nghiệp", "Phân khu vực"


def _stable_zip(path: Path, cached: dict[int, dict[str, int]] | None = None) -> None:
    """Re-zip with fixed timestamps and order (the same workbook gives the same bytes),
    storing each formula's value as Excel would (``cached``: sheet index -> address ->
    value): openpyxl writes formulas with an empty value."""
    with zipfile.ZipFile(path) as src:
        items = [(info.filename, src.read(info.filename)) for info in src.infolist()]
    stamp_text = f"{FIXED_FILE_DATE}T00:00:00Z".encode()
    items = [(name, re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + stamp_text, data)
              if name == "docProps/core.xml" else data) for name, data in items]
    for index, values in (cached or {}).items():
        name = f"xl/worksheets/sheet{index + 1}.xml"
        for i, (item, data) in enumerate(items):
            if item == name:
                def fill(m: re.Match, values: dict[str, int] = values) -> bytes:
                    value = values.get(m.group(1).decode())
                    return m.group(0) if value is None else \
                        m.group(0).replace(b"<v></v>", f"<v>{value}</v>".encode())
                items[i] = (item, re.sub(rb'<c r="([A-Z]+\d+)"[^>]*><f>[^<]*</f><v></v></c>',
                                         fill, data))
    stamp = tuple(int(x) for x in FIXED_FILE_DATE.split("-")) + (0, 0, 0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in items:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(info, data)


def write_workbook(path: Path, province: Province, rows: list[Row],
                   classes: list[tuple[str, str, int]]) -> dict[str, list[list[object]]]:
    """Write the province's workbook; return each sheet's CSV rows."""
    from openpyxl import Workbook

    book = Workbook()
    fixed = datetime.fromisoformat(f"{FIXED_FILE_DATE}T00:00:00")
    book.properties.created = book.properties.modified = fixed
    book.properties.creator = "landplatform samplegen_prices"
    book.remove(book.active)
    csv_rows = {}
    cached: dict[int, dict[str, int]] = {}
    for land_type in province.land_types:
        sheet_name, title = SHEETS[land_type]
        sheet = SheetWriter(book.create_sheet(sheet_name), 8 if province.one_column else 9)
        write_urban_sheet(sheet, province, title, rows, land_type,
                          CLASS_SHEETS.get(land_type, ""))
        csv_rows[sheet_name] = sheet.rows
        cached[len(book.worksheets) - 1] = sheet.cached
    if province.one_column:
        for land_type, sheet_name in CLASS_SHEETS.items():
            write_class_prices_sheet(SheetWriter(book.create_sheet(sheet_name), 6), province,
                                     land_type)
    write_rural_sheet(SheetWriter(book.create_sheet(RURAL_SHEET), 6), province)
    write_agricultural_sheet(SheetWriter(book.create_sheet(AGRI_SHEET), 8), province)
    write_class_sheet(SheetWriter(book.create_sheet(CLASS_SHEET), 4), province, classes)
    book.save(path)
    _stable_zip(path, cached)
    return csv_rows


def sidecar(province: Province, sheets: list[dict], with_rules: bool) -> dict:
    doc = {
        "table_code": province.table_code,
        "province_code": province.code,
        "instrument": province.instrument,
        "title": f"Bảng giá đất {province.name} áp dụng từ 01/01/2026 (dữ liệu mẫu)",
        "effective_from": EFFECTIVE[0],
        "effective_to": EFFECTIVE[1],
        "sheets": sheets,
    }
    if province.columns:
        doc["columns"] = province.columns
    if with_rules:
        doc["rules"] = province.rules
        doc["coefficients"] = list(province.coefficients)
    return doc


def _write_yaml(path: Path, doc: dict) -> None:
    header = ("# Sidecar of a sample price table (valuation/samplegen.py): which table the\n"
              "# file is, the role of each sheet, the adjustment rules and coefficients K.\n")
    path.write_text(header + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")


# --------------------------------------------------------------------------- sites
SITES_FILE = "be_rong_ngo_2026.csv"
SITE_DISTRICTS = ("001", "492")
ALLEY_WIDTHS = (5.0, 3.0, 1.8)  # VT2, VT3, VT4 by the sample tables' rule
ROAD_WIDTHS = (4.0, 7.5, 12.0, 18.0, 30.0)  # one per cross-section band


def parcel_sites(district: str, town: Town, segs: list[Segment],
                 ward_communes: set[str]) -> list[dict]:
    """Recorded access widths: every lot of the town on an alley (its alley's width: ngõ /
    kiệt of 1.8-5 m, positions 2-4 by the tables' rule), and, in Hà Nội, the lots on a
    smaller street of the drawn roads' ward beyond every drawn road's reach (the street's
    width, which picks the row of unnamed roads by cross-section)."""
    sheet, number, _ = sheet_numbers(town)
    out = []
    alley = np.flatnonzero((town.kind == "lot") & (town.front_kind == "alley"))
    far = np.zeros(len(town), dtype=bool)
    if PROVINCE_OF[district] == "01":
        lines = shapely.union_all([s.line for s in segs])
        reach = PROVINCES[0].rules["position_band"]["segment"][-1]["max_m"]
        far = (town.kind == "lot") & (town.front_kind == "street") \
            & np.isin(town.commune, list(ward_communes)) \
            & (shapely.distance(town.geoms, lines) > reach)
    for i in sorted([*alley, *np.flatnonzero(far)],
                    key=lambda i: (town.commune[i], sheet[i], number[i])):
        out.append({"MaXa": str(town.commune[i]), "SoHieuToBanDo": int(sheet[i]),
                    "SoThuTuThua": int(number[i]), "BeRongNgo": float(town.front_width[i]),
                    "kind": "alley" if town.front_kind[i] == "alley" else "cross_section"})
    return out


def write_sites(path: Path, sites: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["MaXa", "SoHieuToBanDo", "SoThuTuThua", "BeRongNgo", "GhiChu"])
        for site in sites:
            writer.writerow([site["MaXa"], site["SoHieuToBanDo"], site["SoThuTuThua"],
                             f"{site['BeRongNgo']:g}".replace(".", ","),
                             "ngõ (dữ liệu mẫu)" if site["kind"] == "alley"
                             else "đường chưa có tên (dữ liệu mẫu)"])


# --------------------------------------------------------------------------- geometry
def _remove(path: Path) -> None:
    for suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg") if path.suffix == ".shp" else ("",):
        (path.with_suffix(suffix) if suffix else path).unlink(missing_ok=True)


def write_segments(path: Path, epsg: int, segments: list[Segment],
                   file_epsg: dict[str, int], ward_of: dict[str, str]) -> None:
    lines = []
    for s in segments:
        line = np.array([s.line], dtype=object)
        if file_epsg[s.district] != epsg:
            line = transform(line, CRS.from_epsg(file_epsg[s.district]), CRS.from_epsg(epsg))
        lines.append(line[0])
    fields = {"TenDuong": [s.road.name for s in segments],
              "Tu": [s.from_desc for s in segments],
              "Den": [s.to_desc for s in segments],
              "LoaiDuong": [s.road.road_class for s in segments],
              "MaHuyen": [s.district for s in segments],
              "MaXa": [ward_of[s.district] for s in segments]}
    _remove(path)
    driver = "ESRI Shapefile" if path.suffix == ".shp" else "GPKG"
    options = ({"DBF_DATE_LAST_UPDATE": FIXED_FILE_DATE} if driver == "ESRI Shapefile" else {})
    ogr_write(path, np.asarray(shapely.to_wkb(np.array(lines, dtype=object)), dtype=object),
              [np.array(v, dtype=object) for v in fields.values()], list(fields),
              layer="doan_duong", driver=driver, geometry_type="LineString",
              crs=f"EPSG:{epsg}", encoding="UTF-8" if driver == "ESRI Shapefile" else None,
              layer_options=options)


def zone_polygon(town: Town) -> tuple[shapely.Polygon, str]:
    """A value zone: the outline of the town's block nearest ZONE_AT, and its standard
    parcel (the block's first lot by number)."""
    x0, y0, x1, y1 = town.box
    at = shapely.Point(x0 + ZONE_AT[0] * (x1 - x0), y0 + ZONE_AT[1] * (y1 - y0))
    lots = np.flatnonzero(town.kind == "lot")
    block = town.block[lots[int(np.argmin(shapely.distance(town.geoms[lots], at)))]]
    members = np.flatnonzero(town.block == block)
    members = members[np.isin(town.kind[members], ["lot", "large", "alley"])]
    poly = shapely.orient_polygons(shapely.coverage_union_all(town.geoms[members]))
    sheet, number, _ = sheet_numbers(town)
    first = min((i for i in members if town.kind[i] == "lot"),
                key=lambda i: (sheet[i], number[i]))
    return poly, f"{town.commune[first]}.{sheet[first]}.{number[first]}"


def write_zone(path: Path, polygon: shapely.Polygon, standard_ref: str, epsg: int) -> None:
    _remove(path)
    fields = {"MaVung": ["VGT-491-01"], "LoaiDat": ["ODT"], "GiaDat": [ZONE_PRICE],
              "ThuaChuan": [standard_ref], "MaHuyen": [ZONE_DISTRICT]}
    ogr_write(path, np.asarray(shapely.to_wkb(np.array([polygon], dtype=object)),
                               dtype=object),
              [np.array(v, dtype=object) for v in fields.values()], list(fields),
              layer="vung_gia_tri", driver="GPKG", geometry_type="Polygon",
              crs=f"EPSG:{epsg}")


# --------------------------------------------------------------------------- main
def _commune_names(reference: Path) -> dict[str, tuple[str, str, str]]:
    """commune code -> (district code, district name, commune name)."""
    out = {}
    with reference.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            out[row["commune_code"]] = (row["district_code"], row["district_name"],
                                        row["commune_name"])
    return out


def generate(out_dir: Path, samples_dir: Path = SAMPLES_DIR) -> dict:
    """Write every file; return the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    parcels = json.loads((samples_dir / "manifest.json").read_text(encoding="utf-8"))
    parcels = parcels["files"] if isinstance(parcels, dict) else parcels
    by_district = {e["district_code"]: e for e in parcels}
    communes = _commune_names(PROJECT_DIR / "landplatform" / "reference"
                              / "admin_units_pre2025.csv")
    with (PROJECT_DIR / "landplatform" / "reference" / "admin_units_2025_crosswalk.csv"
          ).open(encoding="utf-8", newline="") as fh:
        crosswalk = list(csv.DictReader(fh))
    # old commune -> (overlap, new name, new code) where it went wholly into one
    crosswalk_full = {r["old_commune_code"]: (r["overlap"], r["new_commune_name"],
                                              r["new_commune_code"])
                      for r in crosswalk if r["overlap"] == "full"}
    sites: list[dict] = []
    deliveries = []
    roads_manifest: dict[str, list[dict]] = {}
    with fixed_file_dates():
        for province in PROVINCES:
            segments: list[Segment] = []
            file_epsg: dict[str, int] = {}
            zone = None
            ward_of = {d: w for w, (_, ds, _) in province.wards.items() for d in ds}
            for district in province.districts:
                entry = by_district[district]
                town = build_town(district, entry.get("seed", PARCEL_SEED))
                file_epsg[district] = town.district.epsg
                segs = district_segments(district, town)
                segments += segs
                roads_manifest[district] = [
                    {"road_name": s.road.name, "from_desc": s.from_desc, "to_desc": s.to_desc,
                     "road_class": s.road.road_class, "commune_code": ward_of[district],
                     "vt1": {lt: share_price(s.prices("ODT")[0], lt) if lt != "ODT"
                             else s.prices("ODT")[0] for lt in province.land_types}}
                    for s in segs]
                if district in SITE_DISTRICTS:
                    sites += parcel_sites(district, town, segs,
                                          {c for c, (_, _, n) in crosswalk_full.items()
                                           if n == ward_of[district]})
                if district == ZONE_DISTRICT:
                    polygon, ref = zone_polygon(town)
                    zone = (polygon, ref, town.district.epsg)
            stem = f"bang_gia_dat_{province.slug}_2026"
            # a 2026 table names the communes since the reform: the new communes the
            # sample districts' old ones went into, wholly or in part
            olds = {c for c, v in communes.items() if v[0] in province.districts}
            classes = area_classes(sorted({(r["new_commune_code"], r["new_commune_name"])
                                           for r in crosswalk
                                           if r["old_commune_code"] in olds}))
            rows = urban_rows(province, segments)
            csv_rows = write_workbook(out_dir / f"{stem}.xlsx", province, rows, classes)
            sheets = [{"sheet": SHEETS[lt][0], "role": "segments", "land_type": lt,
                       "positions": 4} for lt in province.land_types]
            if province.one_column:
                sheets += [{"sheet": CLASS_SHEETS[lt], "role": "road_classes",
                            "land_type": lt, "positions": 4} for lt in CLASS_SHEETS]
            sheets += [{"sheet": RURAL_SHEET, "role": "area_matrix", "land_type": "ONT",
                        "positions": 4},
                       {"sheet": AGRI_SHEET, "role": "area_matrix", "positions": 4},
                       {"sheet": CLASS_SHEET, "role": "area_classes"}]
            _write_yaml(out_dir / f"{stem}.prices.yaml", sidecar(province, sheets, True))
            seg_path = out_dir / province.segments_file
            write_segments(seg_path, province.segments_epsg, segments, file_epsg, ward_of)
            delivery = {"file": f"{stem}.xlsx", "segments": seg_path.name, "zones": None,
                        "table_code": province.table_code, "province_code": province.code,
                        "format": "xlsx", "segments_epsg": province.segments_epsg,
                        "districts": list(province.districts),
                        "wards": list(province.wards), "one_column": province.one_column,
                        "urban_rows": {k: sum(r.kind == k for r in rows)
                                       for k in ("road", "cross_section", "remaining")},
                        "drawn_segments": len(segments)}
            if zone is not None:
                polygon, ref, epsg = zone
                zone_path = out_dir / "vung_gia_tri_da_nang.gpkg"
                write_zone(zone_path, polygon, ref, epsg)
                delivery["zones"] = zone_path.name
                delivery["zone"] = {"zone_code": "VGT-491-01", "land_type": "ODT",
                                    "vnd_per_m2": ZONE_PRICE, "standard_parcel": ref}
            deliveries.append(delivery)
            if province.code == "48":
                csv_name = f"{stem}_dat_o.csv"
                with (out_dir / csv_name).open("w", encoding="utf-8", newline="") as fh:
                    csv.writer(fh).writerows(
                        [["" if v is None else (vn_text(v) if isinstance(v, int) and v > 999
                                                else v) for v in row]
                         for row in csv_rows[SHEETS["ODT"][0]]])
                _write_yaml(out_dir / f"{stem}_dat_o.prices.yaml",
                            sidecar(province, [{"role": "segments", "land_type": "ODT",
                                                "positions": 4}], False))
                deliveries.append({"file": csv_name, "segments": None, "zones": None,
                                   "table_code": province.table_code,
                                   "province_code": province.code, "format": "csv",
                                   "note": "the residential sheet of the workbook exported "
                                           "as CSV: loading it after the workbook changes "
                                           "nothing"})
    write_sites(out_dir / SITES_FILE, sites)
    manifest = {"deliveries": deliveries, "roads": roads_manifest,
                "effective": list(EFFECTIVE),
                "sites": {"file": SITES_FILE, "parcels": len(sites),
                          "cross_section": sum(s["kind"] == "cross_section" for s in sites)}}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2)
                                           + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m valuation.samplegen",
                                     description="Generate the sample land price tables.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output directory (default: {DEFAULT_OUT})")
    parser.add_argument("--samples", type=Path, default=SAMPLES_DIR,
                        help="folder of the sample parcels (manifest.json)")
    args = parser.parse_args(argv)
    manifest = generate(args.out, args.samples)
    for d in manifest["deliveries"]:
        print(f"{d['file']}: table {d['table_code']}"
              + (f", segments {d['segments']}" if d.get("segments") else "")
              + (f", zones {d['zones']}" if d.get("zones") else ""))
    print(f"wrote {args.out / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
