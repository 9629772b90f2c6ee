"""Deterministic synthetic cadastral parcels: the committed samples and benchmark files.

Why synthetic: real cadastral extracts carry owners' names and ID numbers (personal data)
and cannot be committed or published, yet the loaders, the OGC API and the benchmarks
need files that look like what land offices deliver: several formats, two VN-2000 TM-3
meridians, three field-naming conventions, multi-purpose codes, a superseded 2018 code.

Geometry: each district's WGS84 bounding box (``landplatform/reference``) is transformed
to the province's TM-3 CRS and tiled completely by a jittered grid (a sample district's
rectangle is first cut where it would overlap another sample district's: see
``sample_districts``). Every parcel is the
quadrilateral of four *shared* grid vertices, so parcels never overlap and leave no gaps,
which lets tests and the loader's topology checks rely on exact results. Only interior
vertices are jittered (< 20 % of the spacing), so the tiling still covers the rectangle.

Determinism: every random draw comes from ``numpy.random.default_rng`` seeded with
(seed, district code, grid row, stream). A row therefore gets the same vertices and
attributes whatever chunk it is generated in, which is what lets the scale mode write a
million parcels in bounded memory and still produce the same features on every run.

Run ``python -m cadastre.samplegen --out data/samples`` for the four sample districts, or
``python -m cadastre.samplegen --scale 1000000 --out DIR`` for one benchmark GeoPackage.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import json
import math
import sys
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyogrio
import shapely
from pyogrio.raw import write as ogr_write
from pyproj import Transformer

from cadastre.town import TOWNS, Town, build_town, crosswalk_targets, sheet_numbers

PROJECT_DIR = Path(__file__).resolve().parent.parent
REFERENCE_DIR = PROJECT_DIR / "landplatform" / "reference"
DEFAULT_OUT = PROJECT_DIR / "data" / "samples"
DEFAULT_SEED = 2025

# VN-2000 TM-3 CRS of the provinces that have district extents (domain.md: Hà Nội 105°,
# Đà Nẵng 107°45'). The loader keeps the source CRS per load; so do we, per province.
PROVINCE_EPSG: dict[str, int] = {"01": 5897, "48": 5899}
WGS84 = 4326

JITTER = 0.15  # max jitter of an interior vertex, as a share of the spacing (< 0.20)
SHEET_CELLS = 8  # a map sheet is a block of 8 x 8 grid cells within a commune
AREA_FACTOR = (0.997, 1.003)  # stated area = computed area x factor (survey noise)
OWNER_SHARE = 0.30
SCALE_CHUNK = 50_000  # parcels per append in scale mode: bounds memory, not the result
FIXED_FILE_DATE = "2025-01-01"  # DBF header / GPKG last_change: byte-stable outputs

# Canonical (national MPLIS/VBDLIS) field names, in file order.
CANONICAL_FIELDS: tuple[str, ...] = (
    "MaXa", "SoHieuToBanDo", "SoThuTuThua", "DienTich", "KyHieuMucDichSuDung",
    "TenChu", "SoCCCD", "SoGCN", "NgayCapGCN",
)
OWNER_FIELDS: tuple[str, ...] = ("TenChu", "SoCCCD", "SoGCN", "NgayCapGCN")
# The sample towns' files add the area per purpose and the holder's kind (the shared
# holders format: data/samples/README.md); the benchmark files keep CANONICAL_FIELDS.
SAMPLE_FIELDS: tuple[str, ...] = (*CANONICAL_FIELDS[:5], "DienTichMucDich", "LoaiChu",
                                  *CANONICAL_FIELDS[5:])
FIELD_CONVENTIONS: dict[str, tuple[str, ...]] = {
    "national": SAMPLE_FIELDS,
    "vietnamese": (
        "Mã xã", "Số hiệu tờ bản đồ", "Số thứ tự thửa", "Diện tích", "Mục đích sử dụng",
        "Diện tích theo mục đích", "Loại chủ sử dụng",
        "Tên chủ sử dụng", "Số CCCD", "Số GCN", "Ngày cấp GCN",
    ),
    "snake_case": (
        "ma_xa", "so_to", "so_thua", "dien_tich", "muc_dich", "dien_tich_muc_dich",
        "loai_chu", "ten_chu", "so_cccd", "so_gcn", "ngay_cap_gcn",
    ),
}
DBF_NAME_LEN = 10  # dBASE field names are at most 10 characters: shapefiles truncate

# Thông tư 08/2024 codes, an urban mix (percent weights; they need not sum to 100).
LAND_USE_WEIGHTS: dict[str, float] = {
    "ODT": 55.0, "ODT+CLN": 8.0, "TMD": 4.0, "DGD": 3.0, "DYT": 2.0, "DVH": 2.0,
    "DTT": 2.0, "TSC": 3.0, "DGT": 5.0, "SKC": 2.0, "DKV": 3.0, "TON": 1.5, "TIN": 1.5,
    "NTD": 1.0, "CLN": 2.0, "HNK": 2.0, "NTS": 1.0, "SON": 2.0,
}
LEGACY_CODE = "BHK"  # Thông tư 27/2018 code the loader must map to HNK
# Households and individuals hold residential, commercial and farm land; roads, rivers,
# schools, pagodas and offices belong to the State or organisations: no personal owner.
OWNABLE_CODES = frozenset({"ODT", "ODT+CLN", "TMD", "CLN", "HNK", "NTS", LEGACY_CODE})

FAMILY_NAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ",
                "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý")
MIDDLE_NAMES = ("Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quốc")
GIVEN_NAMES = ("An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hương", "Lan", "Linh", "Long",
               "Mai", "Nam", "Phúc", "Quang", "Sơn", "Thảo", "Trang", "Tuấn", "Việt", "Yến")
GCN_SECOND_LETTERS = "ABCDEGHKLMNOPQRSTUVXY"
GCN_DATE_RANGE = (np.datetime64("2005-01-01"), np.datetime64("2024-12-31"))


@dataclass(frozen=True)
class District:
    """A pre-2025 district with a known WGS84 extent and its communes in code order."""

    province_code: str
    province_name: str
    code: str
    name: str
    bbox: tuple[float, float, float, float]  # min_lon, min_lat, max_lon, max_lat
    communes: tuple[str, ...]
    # The TM-3 rectangle its parcels tile (min_x, min_y, max_x, max_y), where it is not the
    # one enclosing ``bbox``: a sample district cut where it would overlap another's.
    tm3_box: tuple[float, float, float, float] | None = None

    @property
    def epsg(self) -> int:
        return PROVINCE_EPSG[self.province_code]


@dataclass(frozen=True)
class SampleSpec:
    """How one sample district is delivered: format, CRS and field naming."""

    district_code: str
    driver: str
    extension: str
    epsg: int
    convention: str
    layer: str | None = None
    legacy_share: float = 0.0  # share of parcels carrying the 2018 code BHK


DEFAULT_SAMPLES: tuple[SampleSpec, ...] = (
    SampleSpec("001", "ESRI Shapefile", "shp", 5897, "national", legacy_share=0.01),
    SampleSpec("003", "GPKG", "gpkg", WGS84, "vietnamese", layer="thua_dat"),
    SampleSpec("492", "ESRI Shapefile", "shp", 5899, "national"),
    SampleSpec("491", "GeoJSON", "geojson", WGS84, "snake_case"),
)


@dataclass(frozen=True)
class Grid:
    """A district's jittered grid in TM-3 metres; rows count from the north edge.

    ``n_cells`` may be less than ``ncols * nrows`` (scale mode needs an exact count): the
    missing cells are the east end of the southernmost row.
    """

    xmin: float
    ymax: float
    dx: float
    dy: float
    ncols: int
    nrows: int
    n_cells: int
    commune_of_col: np.ndarray = field(repr=False)
    strip_start: np.ndarray = field(repr=False)  # first column of each commune's strip
    strip_width: np.ndarray = field(repr=False)


@functools.lru_cache(maxsize=16)
def transformer(src_epsg: int, dst_epsg: int) -> Transformer:
    """PROJ's best operation (EPSG VN-2000 -> WGS 84), built once: creating one costs ~60 ms."""
    return Transformer.from_crs(src_epsg, dst_epsg, always_xy=True)


def reproject(geoms: np.ndarray, src_epsg: int, dst_epsg: int) -> np.ndarray:
    """An array of sample geometries from one EPSG CRS to another (``transformer``); the
    same array when the two are the same. Every sample generator writes through it."""
    if src_epsg == dst_epsg:
        return geoms
    tr = transformer(src_epsg, dst_epsg)
    return shapely.transform(geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0],
                                                                            xy[:, 1])))


def ascii_slug(name: str) -> str:
    """'Quận Ba Đình' -> 'ba_dinh': file names stay ASCII for every OS and tool."""
    for prefix in ("Quận ", "Huyện ", "Thị xã ", "Thành phố "):
        name = name.removeprefix(prefix)
    text = unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn").lower()
    return "_".join("".join(ch if ch.isalnum() else " " for ch in text).split())


def load_districts(reference_dir: Path = REFERENCE_DIR) -> dict[str, District]:
    """Districts of the extents file, keyed by code, with communes from the admin list.

    Districts without communes (the island district Hoàng Sa, 498) are left out: a parcel
    must carry a real commune code (MaXa) for the loader to accept it.
    """
    communes: dict[str, list[str]] = {}
    province_names: dict[str, str] = {}
    with (reference_dir / "admin_units_pre2025.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            communes.setdefault(row["district_code"], []).append(row["commune_code"])
            province_names[row["province_code"]] = row["province_name"]
    districts: dict[str, District] = {}
    extents = reference_dir / "district_extents_01_48.csv"
    with extents.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            codes = tuple(sorted(communes.get(row["district_code"], [])))
            if not codes or row["province_code"] not in PROVINCE_EPSG:
                continue
            bbox = (float(row["min_lon"]), float(row["min_lat"]),
                    float(row["max_lon"]), float(row["max_lat"]))
            districts[row["district_code"]] = District(
                row["province_code"], province_names[row["province_code"]],
                row["district_code"], row["district_name"], bbox, codes)
    return districts


def tm3_rectangle(district: District) -> tuple[float, float, float, float]:
    """The TM-3 rectangle (metres) enclosing the district's WGS84 box."""
    to_tm3 = transformer(WGS84, district.epsg)
    return to_tm3.transform_bounds(*district.bbox, densify_pts=21)


def plan_grid(district: District, target: int, exact: bool = False) -> Grid:
    """Choose near-square cells so the district's TM-3 rectangle holds ~``target`` parcels.

    With ``exact`` the grid holds exactly ``target`` cells (scale mode); otherwise the whole
    rectangle is tiled and the count is only close to the target (sample mode).
    """
    xmin, ymin, xmax, ymax = district.tm3_box or tm3_rectangle(district)
    width, height = xmax - xmin, ymax - ymin
    spacing = math.sqrt(width * height / target)
    # Every commune gets at least one column when the parcel count allows it.
    ncols = max(1, round(width / spacing), min(len(district.communes), target))
    if exact:
        nrows = math.ceil(target / ncols)
        n_cells = target
    else:
        nrows = max(1, round(height / spacing))
        n_cells = ncols * nrows
    n_communes = len(district.communes)
    cols = np.arange(ncols)
    commune_of_col = cols * n_communes // ncols  # contiguous strips, widths differ by <= 1
    strip_start = np.full(n_communes, ncols, dtype=np.int64)
    np.minimum.at(strip_start, commune_of_col, cols)
    strip_width = np.bincount(commune_of_col, minlength=n_communes)
    return Grid(xmin, ymax, width / ncols, height / nrows, ncols, nrows, n_cells,
                commune_of_col, strip_start, strip_width)


def _rng(seed: int, district: District, row: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, int(district.code), row, stream])


def _vertex_rows(grid: Grid, district: District, seed: int, r0: int, r1: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """TM-3 vertices of vertex rows r0..r1 (inclusive), shape (r1 - r0 + 1, ncols + 1)."""
    xs = np.empty((r1 - r0 + 1, grid.ncols + 1))
    ys = np.empty_like(xs)
    base_x = grid.xmin + np.arange(grid.ncols + 1) * grid.dx
    for k, i in enumerate(range(r0, r1 + 1)):
        rng = _rng(seed, district, i, 0)
        jx = rng.uniform(-JITTER, JITTER, grid.ncols + 1) * grid.dx
        jy = rng.uniform(-JITTER, JITTER, grid.ncols + 1) * grid.dy
        if i in (0, grid.nrows):  # the rectangle's north/south edges stay straight
            jx[:] = 0.0
            jy[:] = 0.0
        jx[[0, -1]] = 0.0  # and so do its west/east edges
        jy[[0, -1]] = 0.0
        xs[k] = base_x + jx
        ys[k] = grid.ymax - i * grid.dy + jy
    return xs, ys


def _quads(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Counter-clockwise quadrilaterals (OGC/RFC 7946) from a block of shared vertices."""
    sw = np.stack([xs[1:, :-1], ys[1:, :-1]], axis=-1)
    se = np.stack([xs[1:, 1:], ys[1:, 1:]], axis=-1)
    ne = np.stack([xs[:-1, 1:], ys[:-1, 1:]], axis=-1)
    nw = np.stack([xs[:-1, :-1], ys[:-1, :-1]], axis=-1)
    rings = np.stack([sw, se, ne, nw, sw], axis=-2).reshape(-1, 5, 2)
    return shapely.polygons(rings)


# A certificate serial is unique in the country: two letters (the first the issuing era)
# and six digits. The generator numbers each district's holders 0, 1, 2, ... and maps
# (holder, district's place among the generated ones) one-to-one onto the second letter
# and the digits, so no two parcels of one generated set share a serial.
SERIAL_SPACE = len(GCN_SECOND_LETTERS) * 1_000_000


@dataclass
class _OwnerCounter:
    """Running certificate ordinal of one district: its serials repeat none of the other
    districts' (the same affine bijection for every district, seeded once)."""

    slot: int
    slots: int
    offset: int
    stride: int
    count: int = 0

    def serial(self, year: int) -> str:
        """The next certificate serial of the district, issued in ``year``: its first
        letter follows the issuing era (A.. 2005-08, B.. 2009-13, ...)."""
        era = "ABCD"[int(np.searchsorted([2009, 2014, 2019], year, side="right"))]
        ordinal = self.count * self.slots + self.slot
        if ordinal >= SERIAL_SPACE:
            raise ValueError(f"more than {SERIAL_SPACE // self.slots:,} certificates in "
                             f"each of {self.slots} districts: serials would repeat")
        self.count += 1
        letter, number = divmod((ordinal * self.stride + self.offset) % SERIAL_SPACE,
                                1_000_000)
        return f"{era}{GCN_SECOND_LETTERS[letter]} {number:06d}"


def _owner_counter(seed: int, district: District, serials: tuple[int, int] | None
                   ) -> _OwnerCounter:
    """``serials``: the district's place among the districts generated together and
    their number; None: by its code among all (a district alone)."""
    rng = np.random.default_rng([seed, 9])  # one mapping for the whole country
    stride = int(rng.integers(100_000, 999_999))
    while math.gcd(stride, SERIAL_SPACE) != 1:
        stride += 1
    slot, slots = serials if serials is not None else (int(district.code) % 1000, 1000)
    return _OwnerCounter(slot, slots, int(rng.integers(0, SERIAL_SPACE)), stride)


def _row_attributes(grid: Grid, district: District, seed: int, row: int,
                    legacy_share: float, owners: _OwnerCounter) -> dict[str, np.ndarray]:
    """Keys, land use, stated-area factor and owner fields of one grid row.

    Draws always happen in the same order and size, so the options (BHK share) change
    only what they are about and never shift another attribute's random stream.
    """
    n = grid.ncols
    rng = _rng(seed, district, row, 1)
    codes = np.array(list(LAND_USE_WEIGHTS), dtype=object)
    weights = np.array(list(LAND_USE_WEIGHTS.values()))
    land_use = codes[rng.choice(len(codes), size=n, p=weights / weights.sum())]
    legacy = rng.random(n) < legacy_share
    land_use[legacy] = LEGACY_CODE
    area_factor = rng.uniform(*AREA_FACTOR, n)
    owner_u = rng.random(n)
    family = rng.integers(0, len(FAMILY_NAMES), n)
    middle = rng.integers(0, len(MIDDLE_NAMES), n)
    given = rng.integers(0, len(GIVEN_NAMES), n)
    female_u = rng.random(n)
    n_days = int((GCN_DATE_RANGE[1] - GCN_DATE_RANGE[0]).astype(int)) + 1
    issued = GCN_DATE_RANGE[0] + rng.integers(0, n_days, n).astype("timedelta64[D]")
    birth_u = rng.random(n)
    id_tail = rng.integers(0, 1_000_000, n)
    rng.integers(0, len(GCN_SECOND_LETTERS), n)  # was the letter: later draws keep theirs

    ownable_share = sum(w for c, w in LAND_USE_WEIGHTS.items() if c in OWNABLE_CODES)
    p_owner = OWNER_SHARE * weights.sum() / ownable_share
    has_owner = np.isin(land_use, list(OWNABLE_CODES)) & (owner_u < p_owner)

    cols = np.arange(n)
    commune = grid.commune_of_col
    local = cols - grid.strip_start[commune]
    width = grid.strip_width[commune]
    col_block, col_in = np.divmod(local, SHEET_CELLS)
    row_block, row_in = divmod(row, SHEET_CELLS)
    col_blocks = -(-width // SHEET_CELLS)
    block_width = np.minimum(SHEET_CELLS, width - col_block * SHEET_CELLS)
    sheet = row_block * col_blocks + col_block + 1
    parcel = row_in * block_width + col_in + 1

    names = np.full(n, None, dtype=object)
    id_numbers = np.full(n, None, dtype=object)
    serials = np.full(n, None, dtype=object)
    dates = np.full(n, np.datetime64("NaT", "D"), dtype="datetime64[D]")
    issue_year = issued.astype("datetime64[Y]").astype(int) + 1970
    for j in np.flatnonzero(has_owner):
        mid = MIDDLE_NAMES[middle[j]]
        female = mid == "Thị" or (mid != "Văn" and female_u[j] < 0.5)
        names[j] = f"{FAMILY_NAMES[family[j]]} {mid} {GIVEN_NAMES[given[j]]}"
        # CCCD: 0 + province code, gender/century digit, birth year (yy), 6 digits.
        # The holder was at least 18 when the certificate was issued.
        born = 1940 + int(birth_u[j] * (issue_year[j] - 18 - 1940 + 1))
        century_digit = (0 if born < 2000 else 2) + int(female)
        id_numbers[j] = (f"0{district.province_code}{century_digit}{born % 100:02d}"
                         f"{id_tail[j]:06d}")
        serials[j] = owners.serial(int(issue_year[j]))
        dates[j] = issued[j]
    return {
        "MaXa": np.array(district.communes, dtype=object)[commune],
        "SoHieuToBanDo": sheet.astype(np.int32),
        "SoThuTuThua": parcel.astype(np.int32),
        "_area_factor": area_factor,
        "KyHieuMucDichSuDung": land_use,
        "TenChu": names,
        "SoCCCD": id_numbers,
        "SoGCN": serials,
        "NgayCapGCN": dates,
    }


def iter_parcel_chunks(district: District, grid: Grid, seed: int, out_epsg: int,
                       legacy_share: float = 0.0, chunk_size: int = SCALE_CHUNK,
                       serials: tuple[int, int] | None = None,
                       ) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Yield (geometries in ``out_epsg``, canonical attribute arrays) by bands of rows.

    A band holds about ``chunk_size`` parcels, so memory does not grow with the district.
    ``serials``: the district's place among the districts of one file and their number,
    so certificate serials repeat in none of them (``_OwnerCounter``).
    """
    rows_per_band = max(1, chunk_size // grid.ncols)
    to_out = None if out_epsg == district.epsg else transformer(district.epsg, out_epsg)
    owners = _owner_counter(seed, district, serials)
    for r0 in range(0, grid.nrows, rows_per_band):
        r1 = min(grid.nrows, r0 + rows_per_band)
        xs, ys = _vertex_rows(grid, district, seed, r0, r1)
        tm3 = _quads(xs, ys)
        attrs = [_row_attributes(grid, district, seed, r, legacy_share, owners)
                 for r in range(r0, r1)]
        data = {k: np.concatenate([a[k] for a in attrs]) for k in attrs[0]}
        keep = (r0 * grid.ncols + np.arange(len(tm3))) < grid.n_cells
        if not keep.any():
            break
        tm3 = tm3[keep]
        data = {k: v[keep] for k, v in data.items()}
        factor = data.pop("_area_factor")
        data["DienTich"] = np.round(shapely.area(tm3) * factor, 1)
        if to_out is None:
            geoms = tm3
        else:
            # Transform the shared vertices once, so neighbours keep identical vertices.
            lon, lat = to_out.transform(xs, ys)
            geoms = _quads(np.asarray(lon), np.asarray(lat))[keep]
        yield geoms, {name: data[name] for name in CANONICAL_FIELDS}


def output_field_names(convention: str, driver: str,
                       fields: tuple[str, ...] = CANONICAL_FIELDS) -> dict[str, str]:
    """Canonical name -> name in the file; shapefiles truncate to dBASE's 10 characters."""
    names = FIELD_CONVENTIONS[convention]
    if driver == "ESRI Shapefile":
        names = tuple(n[:DBF_NAME_LEN] for n in names)
        if len(set(names)) != len(names):
            raise ValueError(f"{convention} names collide when truncated for dBASE")
    every = dict(zip(SAMPLE_FIELDS, names, strict=True))
    return {f: every[f] for f in fields}


@contextlib.contextmanager
def fixed_file_dates() -> Iterator[None]:
    """Pin GeoPackage timestamps so regenerated files are byte-identical (quiet git diff)."""
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": f"{FIXED_FILE_DATE}T00:00:00Z"})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})


def layer_options(driver: str) -> dict[str, str]:
    if driver == "ESRI Shapefile":
        # Fields shrunk to their data, a fixed DBF header date (UTF-8 + .cpg: encoding=).
        return {"RESIZE": "YES", "DBF_DATE_LAST_UPDATE": FIXED_FILE_DATE}
    if driver == "GeoJSON":
        return {"RFC7946": "YES", "COORDINATE_PRECISION": "8"}
    return {}


def remove_dataset(path: Path) -> None:
    """Delete a previous output, shapefile sidecars included, so nothing is appended to."""
    suffixes = (".shp", ".shx", ".dbf", ".prj", ".cpg") if path.suffix == ".shp" else ()
    for p in [path, *(path.with_suffix(s) for s in suffixes)]:
        p.unlink(missing_ok=True)


def _write(path: Path, geoms: np.ndarray, data: dict[str, np.ndarray],
           names: dict[str, str], driver: str, epsg: int, layer: str | None,
           append: bool = False, fields: tuple[str, ...] = CANONICAL_FIELDS) -> None:
    ogr_write(
        path, np.asarray(shapely.to_wkb(geoms), dtype=object),
        [data[c] for c in fields], [names[c] for c in fields],
        layer=layer, driver=driver, geometry_type="Polygon", crs=f"EPSG:{epsg}",
        encoding="UTF-8" if driver == "ESRI Shapefile" else None,
        layer_options=layer_options(driver), append=append,
    )


# -- the sample districts: a town each (cadastre/town.py) ----------------------------------
# Urban sheets are mapped at 1:500 (Thông tư 25/2014: 1:200-1:500 in towns, domain.md);
# the sidecar says so, and the loader holds stated areas to ΔP = 0.0004·500·√P.
SAMPLE_SCALE = 500
SIDECAR = f"""# Sidecar of a sample parcel delivery (cadastre/samplegen.py): what the delivery
# is and the scale of its map sheets, which decides the permissible area error.
delivery: changes
scale: {SAMPLE_SCALE}
"""
AREA_NOISE = 0.3  # stated area = drawn area + up to this share of ΔP at the sheet's scale
# Holder kinds (LoaiChu), the shared holders-file format's values.
INDIVIDUAL, HOUSEHOLD, ORGANISATION = "Cá nhân", "Hộ gia đình", "Tổ chức"
HOLDER_FIELDS = ("MaXa", "SoHieuToBanDo", "SoThuTuThua", "LoaiChu", "TenChu", "SoGiayTo",
                 "TyLe")
HOLDERS_SUFFIX = ".chu_su_dung.csv"
# Who holds a residential lot with a certificate: (kind, weight); the rest of the lots
# (OWNED_SHARE) have no certificate yet, as every ward has.
RESIDENTIAL_HOLDERS = (("individual", 0.34), ("couple", 0.30), ("household", 0.24),
                       ("shares", 0.12))
OWNED_SHARE = 0.93
# Large lots held by an organisation (the rest are the State's, with no certificate).
ORGANISATION_USES = {"DGD", "TSC", "DYT", "TMD", "TON", "DCH"}
COMPANY_KINDS = ("Công ty TNHH", "Công ty Cổ phần", "Công ty TNHH MTV")
COMPANY_TRADES = ("Thương mại", "Đầu tư", "Dịch vụ", "Xây dựng", "Du lịch", "Khách sạn")
COMPANY_NAMES = ("An Phát", "Hồng Phúc", "Minh Long", "Thành Đạt", "Hoàng Gia", "Việt Hưng",
                 "Phú Thịnh", "Sao Mai", "Hải Âu", "Tân Tiến", "Bình Minh", "Trường Sơn")
TAX_PREFIX = {"01": "01", "48": "04"}  # mã số thuế: the first two digits name the province
MIXED_SHARE = {"CLN": (0.55, 0.85), "TMD": (0.50, 0.80)}  # ODT's share of a mixed parcel
LEGACY_LOT_SHARE = 0.01  # Ba Đình lots still carrying the 2018 code BHK (garden plots)
NEW_CODES = ("ODT", "ODT+CLN", "ODT+TMD", "TMD", "DGD", "TSC", "DYT", "TON", "TIN", "DVH",
             "DKV", "DCH", "DTT", "DGT", "MNC", "SON")


def _person(rng: np.random.Generator, female: bool) -> str:
    middle = "Thị" if female and rng.random() < 0.6 else \
        MIDDLE_NAMES[int(rng.integers(0, len(MIDDLE_NAMES)))]
    if not female and middle == "Thị":
        middle = "Văn"
    return (f"{FAMILY_NAMES[int(rng.integers(0, len(FAMILY_NAMES)))]} {middle} "
            f"{GIVEN_NAMES[int(rng.integers(0, len(GIVEN_NAMES)))]}")


@dataclass
class _People:
    """Running person ordinal of a district: the CCCD's last six digits, the district's
    slot first, so no two sample people share a number (a party is keyed by it)."""

    slot: int
    count: int = 0

    def tail(self) -> int:
        self.count += 1
        return self.slot * 100_000 + (self.count * 7_919) % 100_000


def _cccd(rng: np.random.Generator, province: str, female: bool, issued_year: int,
          people: _People) -> str:
    """CCCD: 0 + province code, gender/century digit, birth year (yy), 6 digits; the
    holder was at least 18 when the certificate was issued."""
    born = 1940 + int(rng.random() * (issued_year - 18 - 1940 + 1))
    century_digit = (0 if born < 2000 else 2) + int(female)
    return f"0{province}{century_digit}{born % 100:02d}{people.tail():06d}"


def _shares(n: int, rng: np.random.Generator) -> list[str]:
    """Shares of n co-holders in percent with one decimal, adding up to 100."""
    options = {2: ((50.0, 50.0), (60.0, 40.0), (70.0, 30.0)),
               3: ((40.0, 30.0, 30.0), (33.3, 33.3, 33.4), (50.0, 25.0, 25.0))}[n]
    return [f"{v:.1f}" for v in options[int(rng.integers(0, len(options)))]]


def _organisation(use: str, ward_name: str, street: str, k: int,
                  rng: np.random.Generator) -> str:
    place = ward_name.removeprefix("Phường ")
    street_name = street.split(" ", 1)[1] if " " in street else street
    if use == "DGD":
        return ("Trường Tiểu học", "Trường Trung học cơ sở", "Trường Mầm non")[k % 3] + \
            f" {street_name}"
    if use == "TSC":
        return (f"Ủy ban nhân dân {ward_name}", f"Công an {ward_name}",
                f"Ban quản lý dự án {place}")[k % 3]
    if use == "DYT":
        return f"Trạm Y tế {ward_name}"
    if use == "DCH":
        return f"Ban quản lý chợ {place}"
    if use == "TON":
        return f"Chùa {COMPANY_NAMES[k % len(COMPANY_NAMES)]}"
    return (f"{COMPANY_KINDS[int(rng.integers(0, 3))]} "
            f"{COMPANY_TRADES[int(rng.integers(0, len(COMPANY_TRADES)))]} "
            f"{COMPANY_NAMES[int(rng.integers(0, len(COMPANY_NAMES)))]}")


def _commune_names(reference_dir: Path = REFERENCE_DIR) -> dict[str, str]:
    with (reference_dir / "admin_units_pre2025.csv").open(encoding="utf-8", newline="") as f:
        return {r["commune_code"]: r["commune_name"] for r in csv.DictReader(f)}


def town_parcels(town: Town, seed: int, legacy_share: float = 0.0
                 ) -> tuple[dict[str, np.ndarray], list[tuple]]:
    """The attributes of a town's parcels (canonical names, SAMPLE_FIELDS) and the rows of
    its holders file (HOLDER_FIELDS): keys by 1:500 sheet, stated areas, land use with the
    area of each purpose, holders of every kind (see the README)."""
    district = town.district
    rng = np.random.default_rng([seed, int(district.code), 5])
    n = len(town)
    sheet, number, _ = sheet_numbers(town)
    drawn = shapely.area(town.geoms)
    tolerance = 0.0004 * SAMPLE_SCALE * np.sqrt(drawn)
    stated = np.round(drawn + rng.uniform(-AREA_NOISE, AREA_NOISE, n) * tolerance, 1)
    land_use = town.land_use.copy()
    legacy = (town.kind == "lot") & (rng.random(n) < legacy_share)
    land_use[legacy] = LEGACY_CODE
    parts = np.full(n, None, dtype=object)
    for i in np.flatnonzero(np.char.find(land_use.astype(str), "+") >= 0):
        first, second = land_use[i].split("+")
        a = round(float(stated[i]) * rng.uniform(*MIXED_SHARE[second]), 1)
        parts[i] = f"{first}:{a:.1f};{second}:{float(stated[i]) - a:.1f}"
    names = _commune_names()
    towns = [s.district_code for s in DEFAULT_SAMPLES]
    place = towns.index(district.code) if district.code in towns else None
    owners = _owner_counter(seed, district, None if place is None else (place, len(towns)))
    cols = {k: np.full(n, None, dtype=object) for k in ("LoaiChu", "TenChu", "SoCCCD",
                                                        "SoGCN")}
    dates = np.full(n, np.datetime64("NaT", "D"), dtype="datetime64[D]")
    n_days = int((GCN_DATE_RANGE[1] - GCN_DATE_RANGE[0]).astype(int)) + 1
    holders: list[tuple] = []
    province = district.province_code
    people = _People(9 if place is None else place)
    org_no = 0
    kinds = np.array([k for k, _ in RESIDENTIAL_HOLDERS], dtype=object)
    weights = np.array([w for _, w in RESIDENTIAL_HOLDERS])
    for i in range(n):
        use, kind = land_use[i], town.kind[i]
        residential = kind in ("lot", "villa")
        if not (residential and rng.random() < OWNED_SHARE) and not (
                kind == "large" and use in ORGANISATION_USES):
            continue
        issued = GCN_DATE_RANGE[0] + np.timedelta64(int(rng.integers(0, n_days)), "D")
        year = int(issued.astype("datetime64[Y]").astype(int)) + 1970
        rows: list[tuple[str, str, str, str]] = []  # kind, name, document, share
        if kind == "large" or (use == "TMD" and rng.random() < 0.55):
            org_no += 1
            name = _organisation(use, names[town.commune[i]], town.fronts[i], org_no, rng)
            tax = f"{TAX_PREFIX[province]}{int(rng.integers(0, 10**8)):08d}"
            rows.append((ORGANISATION, name, tax, ""))
        else:
            how = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
            if how == "individual":
                female = rng.random() < 0.45
                rows.append((INDIVIDUAL, _person(rng, female),
                             _cccd(rng, province, female, year, people), ""))
            elif how == "couple":  # a married couple holds jointly: no shares
                for female in (False, True):
                    rows.append((INDIVIDUAL, _person(rng, female),
                                 _cccd(rng, province, female, year, people), ""))
            elif how == "household":  # named by its head: "Hộ ông/bà ..."
                female = rng.random() < 0.3
                rows.append((HOUSEHOLD, f"Hộ {'bà' if female else 'ông'} "
                             f"{_person(rng, female)}", _cccd(rng, province, female, year, people),
                             ""))
            else:  # co-holders with shares (an inheritance, a purchase together)
                k = 2 + int(rng.random() < 0.4)
                for share in _shares(k, rng):
                    female = rng.random() < 0.5
                    rows.append((INDIVIDUAL, _person(rng, female),
                                 _cccd(rng, province, female, year, people), share))
        rng.integers(0, len(GCN_SECOND_LETTERS))  # was the letter: later draws keep theirs
        cols["SoGCN"][i] = owners.serial(year)
        dates[i] = issued
        cols["LoaiChu"][i], cols["TenChu"][i], cols["SoCCCD"][i] = rows[0][:3]
        for holder_kind, name, document, share in rows:
            holders.append((town.commune[i], int(sheet[i]), int(number[i]), holder_kind,
                            name, document, share))
    data = {
        "MaXa": town.commune.copy(), "SoHieuToBanDo": sheet, "SoThuTuThua": number,
        "DienTich": stated, "KyHieuMucDichSuDung": land_use, "DienTichMucDich": parts,
        "LoaiChu": cols["LoaiChu"], "TenChu": cols["TenChu"], "SoCCCD": cols["SoCCCD"],
        "SoGCN": cols["SoGCN"], "NgayCapGCN": dates,
    }
    return data, holders


def write_holders(path: Path, rows: list[tuple]) -> None:
    """The holders file of the shared format (docs: data/samples/README.md)."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HOLDER_FIELDS)
        writer.writerows(rows)


def size_stats(areas: np.ndarray) -> dict[str, float]:
    return {k: round(float(v), 1) for k, v in zip(
        ("min", "median", "p90", "max"), np.percentile(areas, [0, 50, 90, 100]),
        strict=True)}


def sheet_crosswalk(towns: list[Town], data: dict[str, dict[str, np.ndarray]]
                    ) -> list[tuple[str, int, str, int]]:
    """Old commune + sheet -> new commune + sheet, for the sample communes that went wholly
    into one 2025 commune: a new commune's sheets are those of its old communes in code
    order, numbered on from 1 (the province's renumbering; the numbers are the samples')."""
    targets = crosswalk_targets()
    sheets: dict[str, set[int]] = {}
    for town in towns:
        d = data[town.district.code]
        for code, s in zip(d["MaXa"], d["SoHieuToBanDo"], strict=True):
            sheets.setdefault(code, set()).add(int(s))
    rows = []
    by_new: dict[str, list[str]] = {}
    for old in sorted(sheets):
        if len(targets[old]) == 1:
            by_new.setdefault(targets[old][0], []).append(old)
    for new, olds in sorted(by_new.items()):
        k = 0
        for old in olds:
            for s in sorted(sheets[old]):
                k += 1
                rows.append((old, s, new, k))
    return sorted(rows)


def write_sheet_crosswalk(out_dir: Path, rows: list[tuple[str, int, str, int]]) -> None:
    with (out_dir / "sheet_crosswalk.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["old_commune_code", "old_sheet_no", "new_commune_code",
                         "new_sheet_no"])
        writer.writerows(rows)
    names = _commune_names()
    new_names: dict[str, str] = {}
    with (REFERENCE_DIR / "admin_units_2025_crosswalk.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            new_names[r["new_commune_code"]] = r["new_commune_name"]
    groups: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for old, s, new, t in rows:
        groups.setdefault((old, new), []).append((s, t))
    table = "\n".join(
        f"| {old} {names[old]} (1-{max(s for s, _ in v)}) | {new} {new_names[new]} | "
        f"{min(t for _, t in v)}-{max(t for _, t in v)} |"
        for (old, new), v in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])))
    (out_dir / "sheet_crosswalk.md").write_text(f"""# Sample map sheet crosswalk (synthetic)

`sheet_crosswalk.csv`: old commune + sheet -> new commune + sheet, as a province keeps it
when it renumbers the old communes' sheets into the communes they went into on 1 July
2025 (`lis load sheet-crosswalk FILE`; `lis load samples` loads it after the parcels).
Columns: `old_commune_code, old_sheet_no, new_commune_code, new_sheet_no` (the loader also
takes `MaXaCu, SoToCu, MaXaMoi, SoToMoi`, see `cadastre/mappings/sheet_crosswalk.yaml`).

Made by `cadastre/samplegen.py` with the parcels (the sheets are the samples' 1:500
sheets). Only old communes that went wholly into one new commune are renumbered, each
pair from the 2025 crosswalk: a new commune's sheets are its old communes' sheets in code
order, numbered on from 1. The numbers are the samples' own, not a province's:

| Old commune (sheets) | New commune | New sheets |
|---|---|---|
{table}

New communes reuse old codes (00004, 20209, 20242, ...), so one commune + sheet + parcel
number can name two parcels: an old commune's own sheet by its old number and another old
commune's sheet by its new one; the look-up then answers 300 with both. {len(rows)} rows.
""", encoding="utf-8")


def generate_samples(out_dir: Path, seed: int = DEFAULT_SEED) -> list[dict]:
    """Write the four sample towns, their holders files, ``manifest.json``, the sheet
    crosswalk and ``README.md`` to ``out_dir``.

    Returns the manifest: one dict per file, which tests and the platform read instead of
    hard-coding counts, CRSs and field names.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest: list[dict] = []
    towns, datas = [], {}
    with fixed_file_dates():
        for spec in DEFAULT_SAMPLES:
            town = build_town(spec.district_code, seed)
            district = town.district
            data, holders = town_parcels(town, seed, spec.legacy_share)
            towns.append(town)
            datas[district.code] = data
            geoms = reproject(town.geoms, district.epsg, spec.epsg)
            names = output_field_names(spec.convention, spec.driver, SAMPLE_FIELDS)
            path = out_dir / (f"parcels_{district.code}_{ascii_slug(district.name)}"
                              f".{spec.extension}")
            remove_dataset(path)
            _write(path, geoms, data, names, spec.driver, spec.epsg,
                   spec.layer or path.stem, fields=SAMPLE_FIELDS)
            path.with_suffix(".parcels.yaml").write_text(SIDECAR, encoding="utf-8")
            holders_path = out_dir / f"{path.stem}{HOLDERS_SUFFIX}"
            write_holders(holders_path, holders)
            areas = shapely.area(town.geoms)
            lots = town.kind == "lot"
            manifest.append({
                "file": path.name,
                "sidecar": path.with_suffix(".parcels.yaml").name,
                "holders": holders_path.name,
                "scale": SAMPLE_SCALE,
                "district_code": district.code,
                "district_name": district.name,
                "province_code": district.province_code,
                "province_name": district.province_name,
                "format": spec.driver,
                "layer": spec.layer,
                "epsg": spec.epsg,
                "source_epsg": district.epsg,
                "field_convention": spec.convention,
                "fields": names,
                "encoding": "UTF-8",
                "geometry_type": "Polygon",
                "feature_count": len(town),
                "owner_count": int(np.count_nonzero(data["TenChu"] != None)),  # noqa: E711
                "holder_count": len(holders),
                "legacy_code_count": int(np.count_nonzero(
                    data["KyHieuMucDichSuDung"] == LEGACY_CODE)),
                "total_stated_area_m2": round(float(data["DienTich"].sum()), 1),
                "communes": sorted(set(town.commune)),
                "kinds": {k: int(np.count_nonzero(town.kind == k))
                          for k in ("lot", "villa", "large", "main", "street", "alley",
                                    "water")},
                "lot_area_m2": size_stats(areas[lots]),
                "parcel_area_m2": size_stats(areas),
                "seed": seed,
            })
    write_sheet_crosswalk(out_dir, sheet_crosswalk(towns, datas))
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out_dir / "README.md").write_text(_readme(manifest), encoding="utf-8")
    return manifest


def _readme(manifest: list[dict]) -> str:
    names = _commune_names()
    rows = "\n".join(
        f"| `{m['file']}` | {m['district_code']} {m['district_name']} | {m['format']}"
        f"{' (layer `' + m['layer'] + '`)' if m['layer'] else ''} | EPSG:{m['epsg']} | "
        f"{m['field_convention']} | {m['feature_count']:,} | {m['owner_count']:,} | "
        f"{m['holder_count']:,} |"
        for m in manifest)
    parts = "\n".join(
        f"| {m['district_code']} {m['district_name']} | "
        f"{', '.join(f'{c} {names[c]}' for c in m['communes'])} | "
        f"{TOWNS[m['district_code']].why} |" for m in manifest)
    sizes = "\n".join(
        f"| {m['district_code']} | {m['kinds']['lot']:,} | "
        + " | ".join(f"{m['lot_area_m2'][k]:,.1f}" for k in ("min", "median", "p90", "max"))
        + f" | {m['kinds']['villa']} | {m['kinds']['large']} | "
        f"{m['kinds']['main'] + m['kinds']['street']} | "
        f"{m['kinds']['alley']} | {m['kinds']['water']} | "
        + " | ".join(f"{m['parcel_area_m2'][k]:,.1f}" for k in ("median", "max")) + " |"
        for m in manifest)
    seed = manifest[0]["seed"] if manifest else DEFAULT_SEED
    return f"""# Sample cadastral parcels (generated sample data, not a real cadastre)

**These files are generated sample data.** The wards, their codes and the street names are
real; the blocks, lots, owners and numbers are made up by `cadastre/samplegen.py` and
`cadastre/town.py`. Nothing here identifies a real parcel or person.

Four pre-2025 districts, each delivered as one file the way land offices deliver them:
different formats, both VN-2000 TM-3 meridians of the two provinces (Hà Nội 105° =
EPSG:5897, Đà Nẵng 107°45' = EPSG:5899) or WGS84, and three field-naming conventions.
Next to each parcel file, its holders file (`<stem>{HOLDERS_SUFFIX}`).

| File | District | Format | CRS | Field names | Parcels | With holder | Holder rows |
|---|---|---|---|---|---:|---:|---:|
{rows}

`manifest.json` lists the same facts per file; read it rather than hard-coding counts.
Keys: file, sidecar, holders, scale, district_code, district_name, province_code,
province_name, format, layer (GPKG only, else null), epsg (of the file), source_epsg (the
province's TM-3 CRS), field_convention, fields (canonical national name -> name in the
file), encoding, geometry_type, feature_count, owner_count, holder_count,
legacy_code_count, total_stated_area_m2, communes, kinds (parcels per kind: lot, villa,
large, main, street, alley, water), lot_area_m2 and parcel_area_m2 (min, median, p90,
max), seed.

## Which part of each district, and why
Each sample is a town of 3 x 3 ward cells (about 0.95 km x 0.9 km) placed inside the
district's extent (`../shared/reference/district_extents_01_48.csv`) where these wards lie,
with a few of the district's real pre-2025 wards (codes from the GSO catalogue,
`landplatform/reference/admin_units_pre2025.csv`). A ward here is one to three cells, so
it is smaller than the real ward; the part was chosen to show what a land officer works
with: a lake or a river, wards that the 2025 reform split between several new wards and
wards that went wholly into one (so both the crosswalk and the boundaries matter).

| District | Wards (pre-2025 codes) | The part |
|---|---|---|
{parts}

## What is in the files
- Streets: main roads (20-24 m) between the ward cells and round the town carry real
  street names of the district; inside a cell, smaller streets (9-12 m) cut it into blocks
  of about 100-180 m x 50-100 m. Every street piece is a parcel of its own (DGT,
  transport land, Thông tư 08/2024 via domain.md, "Land-use codes").
- Blocks: a frontage strip of lots on the street north and south of the block and, in
  between, alley units: a strip of lots backing onto the one above, the alley (ngõ in Hà
  Nội, kiệt in Đà Nẵng, 1.8-5 m wide, a DGT parcel named like "Ngõ 12 Kim Mã") and a
  strip of lots fronting it. Lots have 3-8 m of frontage (tube houses; a few double lots
  up to 16 m) and 30-300 m² (the issue's urban range); the lot lines are skewed by up to
  0.6 m, as real lot lines rarely meet the street square. On the smaller streets a few
  runs of lots are one villa lot (biệt thự, ODT, 420-800 m²).
- Large lots: some blocks have a school (DGD), ward office (TSC), health station (DYT),
  pagoda (TON), temple (TIN), culture house (DVH) or hotel/office (TMD) over the block's
  full depth at its west end; a few whole blocks are a park (DKV), market (DCH) or sports
  ground (DTT).
- Water: West Lake (Hồ Tây) in Tây Hồ, Trúc Bạch lake in Ba Đình and Thạc Gián lake in
  Thanh Khê are MNC parcels (specialised water surfaces: ponds, lakes), the Hàn river
  along Hải Châu's east edge (beyond Đường Bạch Đằng) is SON (rivers, canals): every lot,
  street or alley whose centre lies in a lake became water, so the shore follows lot
  lines; each ward's share of a lake or river is its own parcel. No houses on the lake.
- Parcels never overlap and leave no gaps: all pieces are cut from shared coordinates and
  the set is noded (a neighbour's vertex on an edge is a vertex of that edge too), so it
  stays exact through the PROJ transformation to WGS84 (EPSG VN-2000 -> WGS 84).
- Boundaries: `boundaries/` holds the sample wards (pre-2025 and 2025) and the sample
  districts as the union of the town's parcels, so every parcel lies inside its ward and
  district (`boundaries/README.md`).
- Keys: MaXa is the real pre-2025 ward code; map sheets (SoHieuToBanDo) are 1:500 sheets
  of 250 m x 250 m on the province's TM-3 grid (a 50 x 50 cm sheet at 1:500, Thông tư
  25/2014), numbered per ward north to south, west to east; parcel numbers (SoThuTuThua)
  run 1..M per sheet from the sheet's north-west. (MaXa, SoHieuToBanDo, SoThuTuThua) is
  unique.
- Area: DienTich is the drawn TM-3 area plus noise of up to {AREA_NOISE:.0%} of the
  permissible error at 1:500 (ΔP = 0.0004·M·√P, domain.md, "Stated area vs drawn area"),
  rounded to 0.1 m². Each file's sidecar (`<file>.parcels.yaml`) says `scale: 500`, and the
  loader holds the stated areas to ΔP at that scale.
- Land use (KyHieuMucDichSuDung, Thông tư 08/2024 codes): residential ODT, mixed use
  ODT+CLN (house and garden) and ODT+TMD (shop-house), more shops (TMD) on the main
  roads; DienTichMucDich gives the area of each purpose of a mixed parcel ("ODT:120.5;
  CLN:45.2", in the order of the code, adding up to DienTich). About 1 % of the Ba Đình
  lots carry the superseded 2018 code BHK (the loader maps it to HNK).
- Holders (LoaiChu, TenChu, SoCCCD and the holders file): about {OWNED_SHARE:.0%} of the
  residential lots have a certificate; their holders are an individual (Cá nhân), a
  married couple (two Cá nhân rows holding jointly, no share), a household (Hộ gia đình,
  "Hộ ông/bà ...", the head's CCCD) or several co-holders with shares (TyLe, adding up
  to 100); schools, offices, markets, pagodas and many shops are held by an organisation
  (Tổ chức, a 10-digit tax code). Roads, water, parks and temples have no holder. The
  parcel file repeats the first holder; the holders file
  (`MaXa,SoHieuToBanDo,SoThuTuThua,LoaiChu,TenChu,SoGiayTo,TyLe`) lists them all (party
  kinds: domain.md, "Rights in the national shape").
- Shapefiles: dBASE limits field names to 10 characters, so the national names appear
  truncated (SoHieuToBa, SoThuTuThu, KyHieuMucD, DienTichMu), as in real shapefile
  deliveries. Text is UTF-8 (.cpg).

## Parcel sizes (m², drawn TM-3 area)

| District | Lots | min | median | p90 | max | Villas | Large | Roads | Alleys | Water | All | max |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{sizes}

**Owners are synthetic.** Names combined from common Vietnamese family, middle and given
names, CCCD numbers (12 digits, 0 + province code, gender/century digit, birth year),
tax codes (10 digits, 01 Hà Nội / 04 Đà Nẵng) and certificate serials (two letters and
six digits) made up by a random generator. They identify nobody. Treat them as personal
data anyway: the platform must never publish owner fields.

## How they were made
```
python -m cadastre.samplegen --out data/samples     # or: lis samples generate
```
Deterministic: numpy `default_rng`, seed {seed}, derived per district and stream. The
same seed gives the same features and, with the same GDAL, byte-identical files. The
sheet crosswalk (`sheet_crosswalk.csv`, `sheet_crosswalk.md`) is written with them.

Benchmark data: `python -m cadastre.samplegen --scale 1000000 --out DIR` writes one GeoPackage
`parcels_scale_<N>.gpkg` (layer `thua_dat`, WGS84, national field names) spread evenly
over the 37 Hà Nội and Đà Nẵng districts that have communes (not Hoàng Sa, 498), in
appended chunks (1M parcels: ~45 s, < 200 MB RSS, ~250 MB file): a jittered grid of ~1 ha
cells per district box, not a town. Not committed.

Reference data (admin units, district extents): see `landplatform/reference` and
`../shared/reference/SOURCES.md` for sources and attribution.
"""


def generate_scale(out_dir: Path, n: int, seed: int = DEFAULT_SEED,
                   progress: bool = False) -> Path:
    """Write ``parcels_scale_<n>.gpkg``: n parcels spread evenly over the known districts.

    Written in appended chunks so memory stays bounded at any n; same geometry and key
    rules as the samples, WGS84, national field names, layer ``thua_dat``.
    """
    if n < 1:
        raise ValueError("n must be positive")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"parcels_scale_{n}.gpkg"
    remove_dataset(path)
    districts = [d for _, d in sorted(load_districts().items())]
    share, extra = divmod(n, len(districts))
    names = output_field_names("national", "GPKG")
    written = 0
    started = time.monotonic()
    with fixed_file_dates():
        for k, district in enumerate(districts):
            target = share + (1 if k < extra else 0)
            if target == 0:
                continue
            grid = plan_grid(district, target, exact=True)
            for geoms, data in iter_parcel_chunks(district, grid, seed, WGS84,
                                                  serials=(k, len(districts))):
                _write(path, geoms, data, names, "GPKG", WGS84, "thua_dat",
                       append=written > 0)
                written += len(geoms)
            if progress:
                print(f"[{written:>12,}/{n:,}] {district.code} {district.name}: "
                      f"{target:,} parcels ({time.monotonic() - started:.1f} s)", flush=True)
    if written != n:
        raise RuntimeError(f"wrote {written} parcels, expected {n}")
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line: the sample set by default, one benchmark GeoPackage with --scale."""
    parser = argparse.ArgumentParser(
        prog="python -m cadastre.samplegen",
        description="Generate deterministic synthetic cadastral parcel files.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output directory (default: {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"random seed (default: {DEFAULT_SEED})")
    parser.add_argument("--scale", type=int, metavar="N",
                        help="write one GeoPackage with N parcels instead of the samples")
    args = parser.parse_args(argv)
    if args.scale is not None:
        if args.scale < 1:
            parser.error("--scale must be a positive number of parcels")
        path = generate_scale(args.out, args.scale, args.seed, progress=True)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
        return 0
    for entry in generate_samples(args.out, args.seed):
        print(f"{entry['file']}: {entry['feature_count']:,} parcels, "
              f"{entry['owner_count']:,} with owner, EPSG:{entry['epsg']}")
    print(f"wrote {Path(args.out) / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
