"""The sample town: a few real wards of each sample district laid out as an urban cadastre.

Why a town and not a grid: the first thing a newcomer sees on the map is the sample data,
and a land officer judges it at a glance. Urban parcels in Hà Nội and Đà Nẵng are blocks
between streets cut into narrow, deep lots (tube houses, 3-8 m of frontage, 30-300 m²),
reached from the street or from alleys (ngõ / kiệt) that run into the block, with the
odd large lot of a school, a ward office or a market; streets, alleys, lakes and rivers
are parcels of their own (DGT, MNC, SON: Thông tư 08/2024, docs in ../shared/docs).

Layout (all in the province's VN-2000 TM-3 metres, axis-aligned): a district's town is
3 x 3 ward cells, each cell a real pre-2025 ward of the district (a ward may take several
cells). Main roads (named, 20-24 m) run between the cells and round the town; inside a
cell, smaller streets (9-12 m) cut it into blocks of about 100-180 m by 50-100 m. A block
is cut, north to south, into a frontage strip on the north street, alley units (a strip of
lots backing onto the one above, the alley, a strip of lots fronting it from below) and a
frontage strip on the south street; the strips are cut into lots by dividers with a small
skew (lot lines are rarely square to the street). Some blocks carry a large lot at their
west end (school, office, health station, pagoda, hotel) over the full depth, a few are
whole (park, market, sports ground). Water (a lake, a river) is drawn as a shape: every
lot, street and alley whose centre falls in it becomes water, so the shore follows lot
lines as a cadastral map's does, and each ward's share is its own water parcel.

Exactness: the pieces are cut from shared coordinates (rounded to the centimetre), and the
whole set is noded (every vertex of a neighbour that lies on a parcel's edge becomes a
vertex of that parcel too: ``node``), so parcels never overlap, leave no gaps and share
their vertices, also after reprojection to WGS84.

Determinism: every draw comes from ``numpy.random.default_rng`` seeded with (seed, district,
stream); ``build_town`` is cached, so the four sample generators of one run (parcels,
boundaries, plans, prices) see the same town without building it twice.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import shapely

if TYPE_CHECKING:
    from cadastre.samplegen import District

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "landplatform" / "reference"

# -- the four towns ------------------------------------------------------------------------
CELL_M = (300.0, 280.0)  # a ward cell, east-west by north-south, metres
MAIN_WIDTH = (20.0, 24.0)  # main roads (mặt cắt), metres
STREET_WIDTHS = (9.0, 10.5, 12.0)  # the smaller streets
BLOCK_X = (100.0, 180.0)  # block length east-west
BLOCK_Y = (50.0, 100.0)  # block depth north-south
FRONT_DEPTH = 16.0  # frontage lot depth before fitting the block
ALLEY_LOT_DEPTH = 12.0
ALLEY_WIDTHS = (1.8, 2.5, 3.0, 4.0, 5.0)  # ngõ / kiệt widths, metres
FRONTAGE = (3.0, 8.0)  # tube-house frontage, metres (typical 3-8 m)
FRONTAGE_MEDIAN = 4.6
LOT_M2 = (30.0, 300.0)  # urban residential lots (the range)
VILLA_M2 = (420.0, 800.0)  # a villa lot (biệt thự): a few per district
VILLA_SHARE = 0.12  # of the frontage strips on the smaller streets
SKEW = 0.6  # a divider's back end moves up to this many metres along the strip
WATER_MIN_M2 = 400.0  # a ward's share of water smaller than this stays land
SHEET_M = 250.0  # a 1:500 map sheet covers 250 m x 250 m (50 x 50 cm)


@dataclass(frozen=True)
class Water:
    """A lake: its name, code and shape as (x, y) fractions of the town box; or a river
    along the town's east edge (``river_m``: its width), beyond the last main road."""

    name: str
    code: str  # MNC (lake, pond) or SON (river, canal): Thông tư 08/2024
    outline: tuple[tuple[float, float], ...] = ()
    river_m: float = 0.0


@dataclass(frozen=True)
class TownSpec:
    """Where a district's town lies, which wards it shows and what it is called."""

    district_code: str
    south_west: tuple[float, float]  # lon, lat of the town's south-west corner
    wards: tuple[tuple[str, ...], ...]  # ward code per cell, rows north to south
    main_ew: tuple[str, ...]  # the four east-west main roads, north to south
    main_ns: tuple[str, ...]  # the four north-south main roads, west to east
    streets: tuple[str, ...]  # names for the smaller streets
    alley_word: str  # "Ngõ" in Hà Nội, "Kiệt" in Đà Nẵng
    water: tuple[Water, ...] = ()
    why: str = ""


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 48,
             wobble: float = 0.0) -> tuple[tuple[float, float], ...]:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = 1 + wobble * np.sin(3 * t) + 0.5 * wobble * np.cos(5 * t)
    return tuple((float(cx + rx * r[i] * np.cos(t[i])), float(cy + ry * r[i] * np.sin(t[i])))
                 for i in range(n))


TOWNS: dict[str, TownSpec] = {
    "001": TownSpec(
        "001", (105.8282, 21.0330),
        (("00008", "00001", "00004"), ("00008", "00016", "00013"),
         ("00022", "00022", "00019")),
        ("Phố Hàng Bún", "Đường Hoàng Hoa Thám", "Phố Kim Mã", "Phố Sơn Tây"),
        ("Phố Văn Cao", "Phố Liễu Giai", "Phố Đội Cấn", "Đường Thanh Niên"),
        ("Phố Quán Thánh", "Phố Phan Đình Phùng", "Phố Nguyễn Trường Tộ", "Phố Hòe Nhai",
         "Phố Ngọc Hà", "Phố Châu Long", "Phố Nguyễn Biểu", "Phố Cửa Bắc",
         "Phố Đặng Dung", "Phố Lý Nam Đế", "Phố Hoàng Văn Thụ", "Phố Ông Ích Khiêm",
         "Phố Nguyễn Thái Học", "Phố Hoàng Diệu", "Phố Đào Tấn", "Phố Vạn Phúc",
         "Phố Linh Lang", "Phố Cống Vị", "Phố Đốc Ngữ", "Phố Vĩnh Phúc"),
        "Ngõ",
        (Water("Hồ Trúc Bạch", "MNC", _ellipse(0.84, 0.80, 0.10, 0.09, wobble=0.08)),),
        "the north and east of the district: Liễu Giai, Phúc Xá, Trúc Bạch and its lake, "
        "Ngọc Hà, Quán Thánh, Đội Cấn, Điện Biên"),
    "003": TownSpec(
        "003", (105.8222, 21.0452),
        (("00100", "00100", "00100"), ("00109", "00112", "00106"),
         ("00109", "00112", "00106")),
        ("Phố Quảng Khánh", "Đường Lạc Long Quân", "Đường Thụy Khuê",
         "Phố Mai Xuân Thưởng"),
        ("Phố Trích Sài", "Đường Âu Cơ", "Phố Xuân Diệu", "Phố Yên Phụ"),
        ("Phố Tô Ngọc Vân", "Phố Đặng Thai Mai", "Phố Từ Hoa", "Phố Nhật Chiêu",
         "Phố Quảng Bá", "Phố Vệ Hồ", "Phố Quảng An", "Phố Văn Cao",
         "Phố Thanh Niên", "Phố Trịnh Công Sơn", "Phố Nguyễn Đình Thi",
         "Phố Yên Hoa", "Phố Hồ Bá Kiện", "Phố Đông Xã", "Phố Tây Hồ", "Phố Võng Thị"),
        "Ngõ",
        (Water("Hồ Tây", "MNC", ((0.0, 0.40), (0.10, 0.46), (0.22, 0.50), (0.34, 0.55),
                                 (0.44, 0.62), (0.52, 0.72), (0.58, 0.84), (0.62, 1.0),
                                 (0.0, 1.0))),),
        "the south and east shore of West Lake: Bưởi, Thụy Khuê, Yên Phụ, Quảng An"),
    "492": TownSpec(
        "492", (108.2128, 16.0560),
        (("20227", "20230", "20230"), ("20233", "20236", "20236"),
         ("20242", "20242", "20242")),
        ("Đường Đống Đa", "Đường Trần Phú", "Đường Lê Duẩn", "Đường Hùng Vương"),
        ("Đường Hoàng Diệu", "Đường Nguyễn Văn Linh", "Đường Lê Lợi", "Đường Bạch Đằng"),
        ("Đường Lý Tự Trọng", "Đường Quang Trung", "Đường Phan Châu Trinh",
         "Đường Như Nguyệt", "Đường Yên Bái", "Đường Thái Phiên", "Đường Lê Hồng Phong",
         "Đường Nguyễn Thị Minh Khai", "Đường Ông Ích Khiêm", "Đường Hải Phòng",
         "Đường Lê Thánh Tôn", "Đường Pasteur", "Đường Trần Quốc Toản",
         "Đường Phan Đình Phùng", "Đường Thống Nhất", "Đường Nguyễn Chí Thanh"),
        "Kiệt",
        (Water("Sông Hàn", "SON", river_m=170.0),),
        "the old centre on the west bank of the Hàn river, Thanh Bình to Phước Ninh"),
    "491": TownSpec(
        "491", (108.1852, 16.0585),
        (("20207", "20207", "20209"), ("20215", "20215", "20209"),
         ("20218", "20218", "20218")),
        ("Đường Trần Cao Vân", "Đường Điện Biên Phủ", "Đường Hà Huy Tập",
         "Đường Trường Chinh"),
        ("Đường Hàm Nghi", "Đường Lê Độ", "Đường Nguyễn Tất Thành", "Đường Ông Ích Đường"),
        ("Đường Lý Thái Tổ", "Đường Thái Thị Bôi", "Đường Hải Phòng", "Đường Đỗ Quang",
         "Đường Nguyễn Hoàng", "Đường Lê Duẩn", "Đường Xuân Hà", "Đường Dũng Sĩ Thanh Khê",
         "Đường Phan Thanh", "Đường Thanh Thủy", "Đường Trần Xuân Lê", "Đường Huỳnh Ngọc Huệ",
         "Đường Kỳ Đồng", "Đường Nguyễn Đức Trung", "Đường Chu Văn An", "Đường Lê Đình Lý"),
        "Kiệt",
        (Water("Hồ Thạc Gián", "MNC", _ellipse(0.42, 0.16, 0.08, 0.07, wobble=0.1)),),
        "the centre of the district: Thanh Khê Đông, Xuân Hà, Chính Gián, Thạc Gián"),
}
SAMPLE_CODES = ("001", "003", "492", "491")

# Large lots: (code, share of the lots that have one, full-depth width range in metres).
END_LOTS: tuple[tuple[str, float, tuple[float, float]], ...] = (
    ("DGD", 0.25, (40.0, 60.0)), ("TSC", 0.15, (24.0, 36.0)), ("DYT", 0.10, (20.0, 30.0)),
    ("TON", 0.10, (18.0, 28.0)), ("TMD", 0.25, (20.0, 40.0)), ("DVH", 0.10, (20.0, 30.0)),
    ("TIN", 0.05, (12.0, 18.0)),
)
WHOLE_BLOCKS: tuple[tuple[str, float], ...] = (("DKV", 0.45), ("DCH", 0.30), ("DTT", 0.25))
END_LOT_SHARE = 0.25  # of the blocks
WHOLE_BLOCK_SHARE = 0.03


@dataclass(frozen=True)
class Line:
    """A street, alley or road centreline with its name, kind and width (TM-3)."""

    name: str
    kind: str  # main | street | alley
    width: float
    geom: shapely.LineString
    ward: str


@dataclass
class Town:
    """A district's sample town: parcels (TM-3, noded) and what they are."""

    district: District
    spec: TownSpec
    geoms: np.ndarray  # polygons, TM-3
    kind: np.ndarray  # lot | villa | large | main | street | alley | water
    land_use: np.ndarray  # Thông tư 08/2024 code(s), "ODT+CLN" for mixed use
    commune: np.ndarray  # pre-2025 ward code
    commune_2025: np.ndarray  # the 2025 ward it is in (by block)
    block: np.ndarray  # block id (-1: road or water)
    fronts: np.ndarray  # name of the street or alley the lot fronts ("" for none)
    front_kind: np.ndarray  # main | street | alley | "" (what the lot fronts)
    front_width: np.ndarray  # width of what it fronts, metres (nan for none)
    water_name: np.ndarray  # "Hồ Tây" for water parcels, else ""
    lines: list[Line] = field(default_factory=list)
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    ward_cells: dict[str, list[tuple[float, float, float, float]]] = field(
        default_factory=dict)

    def __len__(self) -> int:
        return len(self.geoms)


def _rng(seed: int, code: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, int(code), 77, stream])


def _axis(n_cells: int, cell: float, block: tuple[float, float], rng: np.random.Generator
          ) -> list[tuple[float, float, str, int]]:
    """Cut one axis into (start, end, kind, cell) runs: main road, blocks between smaller
    streets, main road, ... The town's edges are main roads too."""
    out: list[tuple[float, float, str, int]] = []
    pos = 0.0
    mains = rng.uniform(*MAIN_WIDTH, n_cells + 1).round(1)
    for c in range(n_cells + 1):
        out.append((pos, round(pos + mains[c], 2), "main", c))
        pos = round(pos + mains[c], 2)
        if c == n_cells:
            break
        avail = cell - (mains[c] + mains[c + 1]) / 2
        mean = sum(block) / 2
        n = max(1, round((avail + 10.0) / (mean + 10.0)))
        streets = rng.choice(STREET_WIDTHS, n - 1)
        lengths = rng.uniform(0.8, 1.2, n)
        lengths = lengths / lengths.sum() * (avail - streets.sum())
        for k in range(n):
            end = round(pos + lengths[k], 2)
            out.append((pos, end, "block", c))
            pos = end
            if k < n - 1:
                end = round(pos + streets[k], 2)
                out.append((pos, end, "street", c))
                pos = end
    return out


def _frontages(length: float, depth: float, rng: np.random.Generator) -> np.ndarray:
    """Cumulative divider positions (0 .. length) of a strip's lots: tube-house frontages
    drawn around FRONTAGE_MEDIAN, clipped to FRONTAGE, the last lot absorbing the rest;
    no lot under LOT_M2[0] or over LOT_M2[1] at the strip's depth."""
    low = max(FRONTAGE[0], LOT_M2[0] / depth + 2 * SKEW)
    high = LOT_M2[1] / depth - 2 * SKEW
    n_max = int(length / low) + 2
    widths = np.clip(rng.lognormal(np.log(FRONTAGE_MEDIAN), 0.28, n_max), low, FRONTAGE[1])
    # a few wider lots: two or three frontages of one holder (a villa, a shop-house)
    widths = np.where(rng.random(n_max) < 0.06, np.clip(widths * 2.1, 8.0, 16.0), widths)
    widths = np.minimum(widths, high)
    cuts = np.cumsum(widths)
    cuts = cuts[cuts < length - low]
    if len(cuts) and length - cuts[-1] > high:  # the rest too wide for one lot: halve it
        cuts = np.append(cuts, (cuts[-1] + length) / 2)
    return np.concatenate([[0.0], cuts, [length]])


@dataclass
class _Piece:
    ring: list[tuple[float, float]]
    kind: str
    land_use: str
    ward: str
    block: int
    fronts: str = ""
    front_kind: str = ""
    front_width: float = float("nan")


def _strip(x0: float, x1: float, y_lo: float, y_hi: float, front_top: bool,
           rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    """The lots of one strip: counter-clockwise rings, dividers skewed at the back."""
    cuts = _frontages(x1 - x0, y_hi - y_lo, rng)
    front = x0 + cuts
    back = front.copy()
    if len(cuts) > 2:
        gaps = np.minimum(np.diff(cuts)[:-1], np.diff(cuts)[1:])
        back[1:-1] += rng.uniform(-1, 1, len(cuts) - 2) * np.minimum(SKEW, gaps / 4)
    front, back = front.round(2), back.round(2)
    rings = []
    for i in range(len(front) - 1):
        if front_top:
            rings.append([(back[i], y_lo), (back[i + 1], y_lo), (front[i + 1], y_hi),
                          (front[i], y_hi)])
        else:
            rings.append([(front[i], y_lo), (front[i + 1], y_lo), (back[i + 1], y_hi),
                          (back[i], y_hi)])
    return rings


def _residential_use(rng: np.random.Generator, on_main: bool) -> str:
    u = rng.random()
    if on_main:
        return "TMD" if u < 0.12 else "ODT+TMD" if u < 0.22 else "ODT+CLN" if u < 0.25 \
            else "ODT"
    return "ODT+CLN" if u < 0.07 else "ODT+TMD" if u < 0.09 else "TMD" if u < 0.11 \
        else "ODT"


def _pick(options: tuple, rng: np.random.Generator) -> tuple:
    weights = np.array([o[1] for o in options])
    return options[int(rng.choice(len(options), p=weights / weights.sum()))]


def _block(pieces: list[_Piece], bid: int, ward: str, x0: float, x1: float, y0: float,
           y1: float, north: tuple[str, str, float], south: tuple[str, str, float],
           alley_no: dict[str, int], spec: TownSpec, lines: list[Line],
           rng: np.random.Generator) -> None:
    """Cut one block (x0..x1, y0..y1) into its lots and alleys (see the module doc)."""
    u = rng.random()
    if u < WHOLE_BLOCK_SHARE:
        code = _pick(WHOLE_BLOCKS, rng)[0]
        pieces.append(_Piece([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], "large", code, ward,
                             bid, *north))
        return
    if u < WHOLE_BLOCK_SHARE + END_LOT_SHARE:
        code, _, (lo, hi) = _pick(END_LOTS, rng)
        end = round(x0 + min(rng.uniform(lo, hi), (x1 - x0) / 3), 2)
        pieces.append(_Piece([(x0, y0), (end, y0), (end, y1), (x0, y1)], "large", code,
                             ward, bid, *north))
        x0 = end
    depth = y1 - y0
    unit = 2 * ALLEY_LOT_DEPTH + float(np.mean(ALLEY_WIDTHS))
    n_units = max(0, round((depth - 2 * FRONT_DEPTH) / unit))
    widths = rng.choice(ALLEY_WIDTHS, n_units)
    scale = (depth - widths.sum()) / (2 * FRONT_DEPTH + 2 * ALLEY_LOT_DEPTH * n_units)
    d, a = FRONT_DEPTH * scale, ALLEY_LOT_DEPTH * scale
    # (low, high, front at the top, what the strip fronts), north to south
    bands: list[tuple[float, float, bool, tuple[str, str, float]]] = []
    y = round(y1 - d, 2)
    bands.append((y, y1, True, north))
    street = north[0].split(" ", 1)[1]
    for k in range(n_units):
        alley_no[street] = alley_no.get(street, 0) + 2 * int(rng.integers(1, 5))
        name = f"{spec.alley_word} {alley_no[street]} {street}"
        lo_top = round(y - a, 2)
        y_alley = round(lo_top - widths[k], 2)
        alley = (name, "alley", float(widths[k]))
        bands.append((lo_top, y, False, alley))  # backs onto the strip above
        pieces.append(_Piece([(x0, y_alley), (x1, y_alley), (x1, lo_top), (x0, lo_top)],
                             "alley", "DGT", ward, bid, name, "alley", float(widths[k])))
        lines.append(Line(name, "alley", float(widths[k]),
                          shapely.LineString([(x0, (y_alley + lo_top) / 2),
                                              (x1, (y_alley + lo_top) / 2)]), ward))
        y = round(y_alley - a, 2)
        bands.append((y, y_alley, True, alley))  # fronts the alley from below
    bands.append((y0, y, False, south))
    for lo, hi, faces_top, (fname, fkind, fwidth) in bands:
        rings = _strip(x0, x1, lo, hi, faces_top, rng)
        villa = _villa(rings, hi - lo, rng) if fkind == "street" else None
        for k, ring in enumerate(rings):
            if villa is not None and villa[0] <= k < villa[1]:
                if k == villa[0]:  # one lot over the run: the first's west, the last's east
                    last = rings[villa[1] - 1]
                    pieces.append(_Piece([ring[0], last[1], last[2], ring[3]], "villa",
                                         "ODT", ward, bid, fname, fkind, fwidth))
                continue
            use = _residential_use(rng, fkind == "main")
            pieces.append(_Piece(ring, "lot", use, ward, bid, fname, fkind, fwidth))


def _villa(rings: list, depth: float, rng: np.random.Generator) -> tuple[int, int] | None:
    """Now and then a run of a frontage strip's lots is one villa lot (ODT, VILLA_M2): the
    old garden houses of Ba Đình's and Hải Châu's quieter streets. (start, end) or None."""
    if rng.random() >= VILLA_SHARE or len(rings) < 12:
        return None
    want = rng.uniform(*VILLA_M2) / depth
    start = int(rng.integers(1, len(rings) - 10))
    end = start
    while end < len(rings) - 1 and rings[end][1][0] - rings[start][0][0] < want:
        end += 1
    return start, end


def _water_mask(pieces: list[_Piece], water: shapely.Geometry) -> np.ndarray:
    centres = shapely.points([np.mean(np.array(p.ring[:4]), axis=0) for p in pieces])
    return shapely.contains(water, centres)


def node(geoms: np.ndarray) -> np.ndarray:
    """The same polygons with every vertex of a neighbour that lies on an edge inserted in
    that edge: the coverage is then exactly noded (shared boundaries have the same
    vertices on both sides), which keeps it gap- and overlap-free through reprojection.

    How: the union of all rings nodes the linework; polygonizing it gives the faces, each
    matched back to the polygon holding its interior point.
    """
    lines = shapely.union_all(shapely.boundary(geoms))
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(lines))),
                       dtype=object)
    points = shapely.point_on_surface(faces)
    tree = shapely.STRtree(geoms)
    face_i, geom_i = tree.query(points, predicate="within")
    if len(face_i) != len(faces) or len(np.unique(geom_i)) != len(geoms):
        raise RuntimeError("noding the town did not give one face per parcel")
    out = np.empty(len(geoms), dtype=object)
    out[geom_i] = faces[face_i]
    return shapely.orient_polygons(out)


def crosswalk_targets(reference_dir: Path = REFERENCE_DIR) -> dict[str, list[str]]:
    """Old commune -> the 2025 communes it went into, in code order."""
    out: dict[str, list[str]] = {}
    with (reference_dir / "admin_units_2025_crosswalk.csv").open(encoding="utf-8",
                                                                 newline="") as f:
        for r in csv.DictReader(f):
            out.setdefault(r["old_commune_code"], []).append(r["new_commune_code"])
    return {k: sorted(v) for k, v in out.items()}


@functools.lru_cache(maxsize=8)
def build_town(code: str, seed: int) -> Town:
    """The district's sample town (see the module docstring); cached per (code, seed)."""
    from cadastre.samplegen import load_districts, transformer

    spec = TOWNS[code]
    district = load_districts()[code]
    rng = _rng(seed, code, 0)
    n_rows, n_cols = len(spec.wards), len(spec.wards[0])
    xs = _axis(n_cols, CELL_M[0], BLOCK_X, rng)
    ys_down = _axis(n_rows, CELL_M[1], BLOCK_Y, rng)  # from the north edge, downwards
    to_tm3 = transformer(4326, district.epsg)
    ox, oy = (round(v) for v in to_tm3.transform(*spec.south_west))
    height = ys_down[-1][1]
    # y runs from the north edge downwards in the partition: flip to TM-3 northings
    ys = [(round(oy + height - b, 2), round(oy + height - a, 2), k, c)
          for a, b, k, c in ys_down]
    xs = [(round(ox + a, 2), round(ox + b, 2), k, c) for a, b, k, c in xs]
    x_main = [e for e in xs if e[2] == "main"]
    y_main = [e for e in ys if e[2] == "main"]
    names_ns = {id(e): spec.main_ns[i] for i, e in enumerate(x_main)}
    names_ew = {id(e): spec.main_ew[i] for i, e in enumerate(y_main)}
    pool = list(spec.streets)
    street_rng = _rng(seed, code, 1)
    street_rng.shuffle(pool)
    k = 0
    for e in xs + ys:
        if e[2] == "street":
            (names_ns if e in xs else names_ew)[id(e)] = pool[k % len(pool)]
            k += 1

    def width_of(e: tuple) -> float:
        return round(e[1] - e[0], 2)

    pieces: list[_Piece] = []
    lines: list[Line] = []
    lot_rng = _rng(seed, code, 2)
    blocks_x = [i for i, e in enumerate(xs) if e[2] == "block"]
    blocks_y = [j for j, e in enumerate(ys) if e[2] == "block"]
    bid = 0
    alley_no: dict[str, int] = {}
    ward_cells: dict[str, list[tuple[float, float, float, float]]] = {}
    for j in blocks_y:
        yb = ys[j]
        north, south = ys[j - 1], ys[j + 1]
        for i in blocks_x:
            xb = xs[i]
            ward = spec.wards[yb[3]][xb[3]]
            west = xs[i - 1]
            # the street north of the block, from the street west of it to the block's east
            # end (the crossing belongs to the east-west street); the last also takes the
            # crossing at the town's east edge
            x_end = xs[-1][1] if i == blocks_x[-1] else xb[1]
            pieces.append(_Piece([(west[0], north[0]), (x_end, north[0]), (x_end, north[1]),
                                  (west[0], north[1])], north[2], "DGT", ward, bid,
                                 names_ew[id(north)], north[2], width_of(north)))
            if j == blocks_y[-1]:  # the town's south edge
                pieces.append(_Piece([(west[0], south[0]), (x_end, south[0]),
                                      (x_end, south[1]), (west[0], south[1])], south[2],
                                     "DGT", ward, bid, names_ew[id(south)], south[2],
                                     width_of(south)))
            # the street west of the block, between the east-west streets
            pieces.append(_Piece([(west[0], yb[0]), (west[1], yb[0]), (west[1], yb[1]),
                                  (west[0], yb[1])], west[2], "DGT", ward, bid,
                                 names_ns[id(west)], west[2], width_of(west)))
            if i == blocks_x[-1]:  # the town's east edge
                east = xs[i + 1]
                pieces.append(_Piece([(east[0], yb[0]), (east[1], yb[0]), (east[1], yb[1]),
                                      (east[0], yb[1])], east[2], "DGT", ward, bid,
                                     names_ns[id(east)], east[2], width_of(east)))
            _block(pieces, bid, ward, xb[0], xb[1], yb[0], yb[1],
                   (names_ew[id(north)], north[2], width_of(north)),
                   (names_ew[id(south)], south[2], width_of(south)),
                   alley_no, spec, lines, lot_rng)
            ward_cells.setdefault(ward, []).append((xb[0], yb[0], xb[1], yb[1]))
            bid += 1
    for e in x_main + [e for e in xs if e[2] == "street"]:
        lines.append(Line(names_ns[id(e)], e[2], width_of(e), shapely.LineString(
            [((e[0] + e[1]) / 2, ys[-1][0]), ((e[0] + e[1]) / 2, ys[0][1])]), ""))
    for e in y_main + [e for e in ys if e[2] == "street"]:
        lines.append(Line(names_ew[id(e)], e[2], width_of(e), shapely.LineString(
            [(xs[0][0], (e[0] + e[1]) / 2), (xs[-1][1], (e[0] + e[1]) / 2)]), ""))

    box = (xs[0][0], ys[-1][0], xs[-1][1], ys[0][1])
    geoms = shapely.polygons([p.ring + [p.ring[0]] for p in pieces])
    keep = np.ones(len(pieces), dtype=bool)
    water_geoms, water_pieces = [], []
    for w in spec.water:
        if w.river_m:
            continue
        shape = shapely.Polygon([(box[0] + fx * (box[2] - box[0]),
                                  box[1] + fy * (box[3] - box[1])) for fx, fy in w.outline])
        wet = _water_mask(pieces, shape) & keep
        # an alley whose lots went under water goes with them (no alley into the lake)
        fronts = np.array([p.fronts for p in pieces], dtype=object)
        for i in np.flatnonzero(keep & ~wet):
            if pieces[i].kind == "alley":
                lots = fronts == pieces[i].fronts
                lots[i] = False
                wet[i] = wet[lots].mean() >= 0.5
        wards = np.array([p.ward for p in pieces], dtype=object)
        for ward in sorted(set(wards[wet])):
            members = np.flatnonzero(wet & (wards == ward))
            merged = shapely.union_all(geoms[members])
            for part in shapely.get_parts(merged):
                inside = members[shapely.contains(part, shapely.point_on_surface(
                    geoms[members]))]
                if part.area < WATER_MIN_M2:
                    continue  # stays land: its lots and streets are kept
                keep[inside] = False
                water_geoms.append(part)
                water_pieces.append(_Piece([], "water", w.code, ward, -1, w.name))
    for w in spec.water:
        if w.river_m:
            box = _river(w, pieces, geoms, box, water_geoms, water_pieces)
    kept = [p for p, k_ in zip(pieces, keep, strict=True) if k_]
    all_geoms = np.concatenate([geoms[keep], np.array(water_geoms, dtype=object)])
    all_pieces = kept + water_pieces
    noded = node(all_geoms)
    water_name = np.array([p.fronts if p.kind == "water" else "" for p in all_pieces],
                          dtype=object)
    town = Town(
        district=district, spec=spec, geoms=noded,
        kind=np.array([p.kind for p in all_pieces], dtype=object),
        land_use=np.array([p.land_use for p in all_pieces], dtype=object),
        commune=np.array([p.ward for p in all_pieces], dtype=object),
        commune_2025=np.empty(len(all_pieces), dtype=object),
        block=np.array([p.block for p in all_pieces]),
        fronts=np.array(["" if p.kind == "water" else p.fronts for p in all_pieces],
                        dtype=object),
        front_kind=np.array([p.front_kind for p in all_pieces], dtype=object),
        front_width=np.array([p.front_width for p in all_pieces], dtype=float),
        water_name=water_name, lines=lines, box=box, ward_cells=ward_cells)
    _assign_2025(town, seed)
    return town


def _river(w: Water, pieces: list[_Piece], geoms: np.ndarray,
           box: tuple[float, float, float, float], water_geoms: list,
           water_pieces: list[_Piece]) -> tuple[float, float, float, float]:
    """A river beyond the town's east edge: one parcel per ward along it (the ward of the
    pieces on the edge), its east bank a gentle curve; returns the box with the river."""
    east = np.flatnonzero(np.isclose(shapely.bounds(geoms)[:, 2], box[2]))
    runs: list[list] = []
    for i in sorted(east, key=lambda i: shapely.bounds(geoms[i])[1]):
        lo, hi = shapely.bounds(geoms[i])[1], shapely.bounds(geoms[i])[3]
        if runs and runs[-1][0] == pieces[i].ward:
            runs[-1][2] = max(runs[-1][2], hi)
        else:
            runs.append([pieces[i].ward, lo, hi])
    x0 = box[2]

    def bank(y: float) -> float:
        return round(x0 + w.river_m + 25 * np.sin((y - box[1]) / 260), 2)

    for ward, lo, hi in runs:
        ys = np.linspace(lo, hi, 12)
        ring = [(x0, lo), *[(bank(y), round(y, 2)) for y in ys], (x0, hi)]
        water_geoms.append(shapely.Polygon(ring))
        water_pieces.append(_Piece([], "water", w.code, ward, -1, w.name))
    return (box[0], box[1], max(bank(y) for y in np.linspace(box[1], box[3], 200)), box[3])


def _assign_2025(town: Town, seed: int) -> None:
    """Each parcel's 2025 ward: the old ward's only one, or, where the old ward was split
    between k new ones, by block: the ward's blocks in k groups of about equal count,
    north to south (then west to east) in the new wards' code order. Roads and alleys go
    with the block they were cut with, water with the nearest block's group. The line
    therefore follows streets, as the reform's did (the exact lines are the resolutions'
    maps, not these)."""
    targets = crosswalk_targets()
    centres = shapely.centroid(town.geoms)
    cx, cy = shapely.get_x(centres), shapely.get_y(centres)
    for ward in np.unique(town.commune):
        members = np.flatnonzero(town.commune == ward)
        new = targets[ward]
        if len(new) == 1:
            town.commune_2025[members] = new[0]
            continue
        blocks = np.unique(town.block[members][town.block[members] >= 0])
        by_block = {}
        for b in blocks:
            sel = members[town.block[members] == b]
            by_block[b] = (float(np.mean(cy[sel])), float(np.mean(cx[sel])))
        order = sorted(blocks, key=lambda b: (-round(by_block[b][0], -1), by_block[b][1]))
        group = {b: new[min(len(new) - 1, k * len(new) // len(order))]
                 for k, b in enumerate(order)}
        for m in members:
            b = town.block[m]
            if b < 0:  # water: the block nearest its centre
                b = min(order, key=lambda o: (by_block[o][0] - cy[m]) ** 2
                        + (by_block[o][1] - cx[m]) ** 2)
            town.commune_2025[m] = group[b]


def sheet_numbers(town: Town) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sheet number, parcel number, sheet box index) of every parcel: 1:500 sheets of
    250 m x 250 m on the province's TM-3 grid, numbered per ward north to south, west to
    east among the sheets its parcels' points fall on; parcels numbered 1..M per sheet in
    the same order of their points (Thông tư 25/2014: a sheet's parcels are numbered from
    its north-west corner)."""
    points = shapely.point_on_surface(town.geoms)
    x, y = shapely.get_x(points), shapely.get_y(points)
    col = np.floor(x / SHEET_M).astype(np.int64)
    row = np.floor(y / SHEET_M).astype(np.int64)
    sheet = np.zeros(len(town), dtype=np.int32)
    number = np.zeros(len(town), dtype=np.int32)
    for ward in np.unique(town.commune):
        members = np.flatnonzero(town.commune == ward)
        cells = sorted({(-int(row[m]), int(col[m])) for m in members})
        index = {c: k + 1 for k, c in enumerate(cells)}
        sheet[members] = [index[(-int(row[m]), int(col[m]))] for m in members]
        for s in np.unique(sheet[members]):
            sel = members[sheet[members] == s]
            order = np.lexsort((np.round(x[sel], 1), -np.round(y[sel], 1)))
            number[sel[order]] = np.arange(1, len(sel) + 1)
    return sheet, number, row * 100_000 + col
