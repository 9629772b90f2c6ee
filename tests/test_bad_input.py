"""Bad input, run against every loader (issue 6): a corpus of broken deliveries built in
tmp_path from the committed samples, parametrised over the loaders each case applies to.

Loaders: parcels (Shapefile / GeoPackage), plan zones (Shapefile / GeoPackage + sidecar),
price tables (workbook / CSV + sidecar) with their road segments (Shapefile, lines) and
value zones (GeoPackage, polygons), administrative boundaries (Shapefile / GeoPackage).
Every case ends in either a clear error naming file, feature (or sheet + cell), field and
reason, or a documented repair reported in the
result; a load that does not succeed leaves the database exactly as it was (snapshots of
every data table before and after). The behaviour is tabled in docs/ARCHITECTURE.md
("Bad input").
"""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pyogrio
import pytest
import shapely
import yaml
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine

from boundaries.loader import load_boundaries
from boundaries.rules import Options as BoundaryOptions
from cadastre.loader import load_parcels
from cadastre.rules import Options as ParcelOptions
from etl.report import LoadResult
from landplatform.db import make_engine
from landplatform.settings import get_settings
from planning.loader import load_plan
from planning.rules import Options as PlanOptions
from support import SAMPLES, create_database, data_snapshot
from valuation.loader import load_prices

PLANS = SAMPLES / "plans"
PRICES = SAMPLES / "prices"
PARCELS_SHP = SAMPLES / "parcels_001_ba_dinh.shp"  # VN-2000 TM-3 105° (EPSG:5897)
PLAN_SHP = PLANS / "zoning_001_ba_dinh.shp"  # EPSG:5897
WORKBOOK = PRICES / "bang_gia_dat_da_nang_2026.xlsx"
CSV = PRICES / "bang_gia_dat_da_nang_2026_dat_o.csv"
SEGMENTS = PRICES / "doan_duong_da_nang.shp"  # VN-2000 TM-3 107°45' (EPSG:5899)
ZONES = PRICES / "vung_gia_tri_da_nang.gpkg"  # WGS84
BOUNDARIES_SHP = SAMPLES / "boundaries" / "dia_gioi_xa_ha_noi.shp"  # EPSG:5897
PLAN_CODE = "BAD-INPUT-001"
OTHER_TM3 = {5897: 5899, 5899: 5897}  # the other province's meridian
TABLES = ("planning.plan", "planning.zone", "valuation.price_table",
          "valuation.price_segment", "valuation.price_rate", "valuation.price_area_class",
          "valuation.price_zone", "valuation.price_coefficient", "admin.unit_boundary",
          "admin.admin_unit")


# --- legacy Vietnamese encodings, written byte by byte -----------------------------------
# TCVN3 (ABC, .VnTime fonts): one byte per letter; capitals with tone marks live in a
# separate font (.VnTimeH) at the lower-case positions. Table: TCVN 5712:1993.
_TCVN3_TABLE = (
    "b5:à b6:ả b7:ã b8:á b9:ạ a8:ă bb:ằ bc:ẳ bd:ẵ be:ắ c6:ặ a9:â c7:ầ c8:ẩ c9:ẫ ca:ấ cb:ậ "
    "a7:Đ ae:đ cc:è ce:ẻ cf:ẽ d0:é d1:ẹ aa:ê d2:ề d3:ể d4:ễ d5:ế d6:ệ d7:ì d8:ỉ dc:ĩ dd:í "
    "de:ị df:ò e1:ỏ e2:õ e3:ó e4:ọ ab:ô e5:ồ e6:ổ e7:ỗ e8:ố e9:ộ ac:ơ ea:ờ eb:ở ec:ỡ ed:ớ "
    "ee:ợ ef:ù f1:ủ f2:ũ f3:ú f4:ụ ad:ư f5:ừ f6:ử f7:ữ f8:ứ f9:ự fa:ỳ fb:ỷ fc:ỹ fd:ý fe:ỵ "
    "a1:Ă a2:Â a3:Ê a4:Ô a5:Ơ a6:Ư")
_TCVN3 = dict(pair.split(":") for pair in _TCVN3_TABLE.split())
TCVN3 = {ch: bytes([int(code, 16)]) for code, ch in _TCVN3.items()}
# VNI-Windows: a base letter followed by a mark byte (the VNI fonts draw them as one).
_VNI_LETTERS = ("áàảãạăắằẳẵặâấầẩẫậéèẻẽẹêếềểễệíìỉĩịóòỏõọôốồổỗộơớờởỡợúùủũụưứừửữựýỳỷỹỵđ"
                "ÁÀẢÃẠĂẮẰẲẴẶÂẤẦẨẪẬÉÈẺẼẸÊẾỀỂỄỆÍÌỈĨỊÓÒỎÕỌÔỐỒỔỖỘƠỚỜỞỠỢÚÙỦŨỤƯỨỪỬỮỰÝỲỶỸỴĐ")
_VNI_TABLE = (
    "aù aø aû aõ aï aê aé aè aú aü aë aâ aá aà aå aã aä eù eø eû eõ eï eâ eá eà eå eã eä í ì "
    "æ ó ò où oø oû oõ oï oâ oá oà oå oã oä ô ôù ôø ôû ôõ ôï uù uø uû uõ uï ö öù öø öû öõ öï "
    "yù yø yû yõ î ñ AÙ AØ AÛ AÕ AÏ AÊ AÉ AÈ AÚ AÜ AË AÂ AÁ AÀ AÅ AÃ AÄ EÙ EØ EÛ EÕ EÏ EÂ "
    "EÁ EÀ EÅ EÃ EÄ Í Ì Æ Ó Ò OÙ OØ OÛ OÕ OÏ OÂ OÁ OÀ OÅ OÃ OÄ Ô ÔÙ ÔØ ÔÛ ÔÕ ÔÏ UÙ UØ UÛ "
    "UÕ UÏ Ö ÖÙ ÖØ ÖÛ ÖÕ ÖÏ YÙ YØ YÛ YÕ Î Ñ")
_VNI_CODES = _VNI_TABLE.split()
assert len(_VNI_LETTERS) == len(_VNI_CODES) == 134
VNI = {ch: code.encode("latin-1") for ch, code in zip(_VNI_LETTERS, _VNI_CODES, strict=True)}
TONES = "\u0300\u0301\u0303\u0309\u0323"  # the five tone marks cp1258 writes as combining


def tcvn3(value: str) -> bytes:
    """Capitals with tone marks take the lower-case byte (the .VnTimeH font's layout);
    symbols outside the table (², °) keep their Windows-1252 byte."""
    return b"".join(ch.encode("ascii") if ch.isascii()
                    else TCVN3.get(ch) or TCVN3.get(ch.lower()) or ch.encode("cp1252")
                    for ch in unicodedata.normalize("NFC", value))


def vni(value: str) -> bytes:
    return b"".join(ch.encode("ascii") if ch.isascii() else VNI.get(ch) or ch.encode("cp1252")
                    for ch in unicodedata.normalize("NFC", value))


def cp1258(value: str) -> bytes:
    """Windows-1258 as Windows writes it: precomposed where the code page has the letter,
    otherwise base letter (with its vowel mark) + a combining tone mark."""
    out = b""
    for ch in unicodedata.normalize("NFC", value):
        try:
            out += ch.encode("cp1258")
        except UnicodeEncodeError:
            parts = unicodedata.normalize("NFD", ch)
            tone = "".join(c for c in parts if c in TONES)
            base = unicodedata.normalize("NFC", "".join(c for c in parts if c not in TONES))
            out += base.encode("cp1258") + tone.encode("cp1258")
    return out


def transcode_dbf(dbf: Path, encode: Callable[[str], bytes]) -> None:
    """Rewrite every text value of a UTF-8 .dbf with ``encode`` (no LDID: the file then
    says nothing about its code page, as most legacy deliveries)."""
    data = bytearray(dbf.read_bytes())
    records = int.from_bytes(data[4:8], "little")
    header, width = int.from_bytes(data[8:10], "little"), int.from_bytes(data[10:12], "little")
    fields, offset, pos = [], 1, 32
    while data[pos] != 0x0D:
        if chr(data[pos + 11]) == "C":
            fields.append((offset, data[pos + 16]))
        offset += data[pos + 16]
        pos += 32
    for i in range(records):
        for off, length in fields:
            start = header + i * width + off
            value = bytes(data[start:start + length]).decode("utf-8").rstrip(" ")
            out = encode(value)
            assert len(out) <= length
            data[start:start + length] = out.ljust(length, b" ")
    data[29] = 0
    dbf.write_bytes(bytes(data))


# --- the database and the loaders --------------------------------------------------------
@pytest.fixture(scope="module")
def db(server_url: URL) -> Iterator[Engine]:
    """Ba Đình parcels, a test plan (first zones of Ba Đình's) and Đà Nẵng's price table."""
    engine = make_engine(create_database(server_url, "lis_bad_input"))
    assert load_parcels(engine, PARCELS_SHP).status == "loaded"
    assert load_prices(engine, WORKBOOK, segments=SEGMENTS, zones=ZONES).status == "loaded"
    yield engine
    engine.dispose()


def snapshot(engine: Engine) -> dict[str, object]:
    """Counts and content hashes of every data table of the three loaders."""
    snap = data_snapshot(engine)
    with engine.connect() as conn:
        for table in TABLES:
            snap[table] = tuple(conn.execute(text(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                f" FROM {table} t")).one())
    return snap


def write(frame: gpd.GeoDataFrame, path: Path) -> Path:
    """Write ``frame`` as a Shapefile (UTF-8, .cpg) or GeoPackage, by ``path``'s suffix."""
    for old in path.parent.glob(path.stem + ".*"):
        if old.suffix != ".yaml":
            old.unlink()
    pyogrio.write_dataframe(frame, path, layer=path.stem)
    return path


def copy(src: Path, folder: Path) -> Path:
    """Copy a sample (every part of a Shapefile, the sidecar of a table) into ``folder``."""
    for part in src.parent.glob(src.stem + ".*"):
        shutil.copy(part, folder / part.name)
    return folder / src.name


@dataclass(frozen=True)
class Loader:
    """One loader, seen through the geometry file a case corrupts."""

    name: str
    geometry: str  # polygon | line
    base: Callable[[], gpd.GeoDataFrame]  # the clean features (a subset of a sample)
    fields: dict[str, str]  # role -> column: required, text, key
    run: Callable[[Engine, Path, dict], LoadResult]  # load with that file in the delivery
    prefixed: bool = False  # price issues name their field "<file>!<field>"

    def field(self, path: Path, name: str) -> str:
        return f"{path.name}!{name}" if self.prefixed else name

    def suffix(self) -> str:
        return ".shp" if self.name != "price zones" else ".gpkg"


def _parcels() -> gpd.GeoDataFrame:
    frame = pyogrio.read_dataframe(PARCELS_SHP)
    # a .dbf date written back from pandas would be a timestamp string: keep it a date
    frame["NgayCapGCN"] = frame["NgayCapGCN"].dt.strftime("%Y-%m-%d")
    return frame[frame["TenChu"].notna()].iloc[:30].reset_index(drop=True)


def _plan() -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(PLAN_SHP).iloc[:10].reset_index(drop=True)


def _run_parcels(engine: Engine, path: Path, kw: dict) -> LoadResult:
    crs = kw.pop("crs", None)
    return load_parcels(engine, path, options=ParcelOptions(crs=crs), **kw)


def _run_plan(engine: Engine, path: Path, kw: dict) -> LoadResult:
    meta = yaml.safe_load(PLAN_SHP.with_suffix(".plan.yaml").read_text(encoding="utf-8"))
    meta.update({"plan_code": PLAN_CODE, **kw.pop("sidecar", {})})
    path.with_name(path.stem + ".plan.yaml").write_text(
        yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    crs = kw.pop("crs", None)
    return load_plan(engine, path, options=PlanOptions(crs=crs), **kw)


def _run_boundaries(engine: Engine, path: Path, kw: dict) -> LoadResult:
    crs = kw.pop("crs", None)
    return load_boundaries(engine, path, options=BoundaryOptions(crs=crs), **kw)


def _run_prices(role: str) -> Callable[[Engine, Path, dict], LoadResult]:
    def run(engine: Engine, path: Path, kw: dict) -> LoadResult:
        folder = path.parent / "delivery"
        folder.mkdir(exist_ok=True)
        files = {"segments": copy(SEGMENTS, folder), "zones": copy(ZONES, folder)}
        files[role] = path
        return load_prices(engine, copy(WORKBOOK, folder), **files, **kw)
    return run


LOADERS = {
    "parcels": Loader("parcels", "polygon", _parcels,
                      {"required": "SoHieuToBa", "text": "DiaChi", "key": "SoThuTuThu"},
                      _run_parcels),
    "plan": Loader("plan", "polygon", _plan,
                   {"required": "MaODat", "text": "ChucNang", "key": "MaODat"}, _run_plan),
    "price segments": Loader("price segments", "line",
                             lambda: pyogrio.read_dataframe(SEGMENTS),
                             {"required": "TenDuong", "text": "TenDuong", "key": "TenDuong"},
                             _run_prices("segments"), prefixed=True),
    "price zones": Loader("price zones", "polygon", lambda: pyogrio.read_dataframe(ZONES),
                          {"required": "GiaDat", "text": "MaVung", "key": "MaVung"},
                          _run_prices("zones"), prefixed=True),
    "boundaries": Loader("boundaries", "polygon", lambda: pyogrio.read_dataframe(BOUNDARIES_SHP),
                         {"required": "MaXa", "text": "TenXa", "key": "MaXa"},
                         _run_boundaries),
}
SHAPEFILE_LOADERS = ["parcels", "plan", "price segments", "boundaries"]
# The canonical name each loader reports a role's field under.
CANONICAL = {("parcels", "required"): "sheet_no", ("plan", "required"): "zone_code",
             ("price segments", "required"): "road_name", ("price zones", "required"): "price",
             ("boundaries", "required"): "commune_code", ("boundaries", "text"): "name",
             ("parcels", "text"): "address", ("plan", "text"): "function",
             ("price segments", "text"): "road_name", ("price zones", "text"): "zone_code"}


@pytest.fixture(scope="module")
def loaded(db: Engine, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """Every loader's clean base delivered once, so a clean re-load changes nothing."""
    tmp = tmp_path_factory.mktemp("base")
    for name, loader in LOADERS.items():
        folder = tmp / name.replace(" ", "_")
        folder.mkdir()
        result = loader.run(db, write(loader.base(), folder / f"base{loader.suffix()}"), {})
        assert result.status == "loaded", (name, result.detail_lines(), result.message)
    return db


def unchanged(result: LoadResult) -> None:
    """A clean load of data already loaded: nothing inserted, updated or removed."""
    assert result.status == "loaded", (result.message, result.detail_lines())
    assert (result.inserted, result.updated) == (0, 0), result.summary()
    assert not getattr(result, "removed", 0) and not getattr(result, "table_changed", False)


def failed(db: Engine, result: LoadResult, before: dict, *fragments: str) -> None:
    """A whole-delivery refusal: clear message, nothing loaded, the failure recorded."""
    assert result.status == "failed", (result.summary(), result.detail_lines())
    for fragment in fragments:
        assert fragment in result.message, result.message
    assert "Traceback" not in result.message
    assert "nothing was loaded" in result.summary()
    assert snapshot(db) == before
    with db.connect() as conn:
        status = conn.execute(text("SELECT status FROM etl.load_run WHERE run_id = :r"),
                              {"r": result.run_id}).scalar()
    assert status == "failed"


def rejected(db: Engine, result: LoadResult, before: dict, feature_no: int, field: str,
             reason: str) -> None:
    """Rejected features: the feature, field and reason named, recorded, nothing loaded."""
    assert result.status == "rejected", (result.summary(), result.message)
    hits = [i for i in result.rejects if (i.feature_no, i.field) == (feature_no, field)]
    assert hits and reason in hits[0].reason, [i.line(result.file.name) for i in result.rejects]
    assert snapshot(db) == before
    with db.connect() as conn:
        stored = conn.execute(text(
            "SELECT j.reason FROM etl.load_run r JOIN etl.load_reject j USING (run_id) "
            "WHERE r.run_id = :r AND r.status = 'rejected' AND j.feature_no = :no "
            "AND j.field = :f"), {"r": result.run_id, "no": feature_no, "f": field}).scalars()
        assert any(reason in s for s in stored)


def per_loader(names: list[str]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("loader", [LOADERS[n] for n in names], ids=names)


# --- damaged Shapefiles, missing and wrong CRS --------------------------------------------
@per_loader(SHAPEFILE_LOADERS)
@pytest.mark.parametrize(("part", "reason"), [
    (".shp", ".shp is truncated: its header states"),
    (".shx", ".shx is truncated"),
    (".dbf", ".dbf is truncated: its header states"),
])
def test_cut_shapefile_fails(loaded: Engine, loader: Loader, tmp_path: Path, part: str,
                             reason: str) -> None:
    """A .shp cut in half used to read as half the features plus features without
    geometry (quarantine would have loaded half the file); a cut .dbf as 'fread failed'."""
    base = loader.base().iloc[:30]
    path = write(base, tmp_path / "cut.shp")
    data = path.with_suffix(part).read_bytes()
    path.with_suffix(part).write_bytes(data[:len(data) // 2])
    before = snapshot(loaded)
    result = loader.run(loaded, path, {})
    failed(loaded, result, before, f"cut{reason}")
    assert result.message.count("cut.") >= 1  # names the damaged part


def _bare_shapefile(folder: Path, records: int, width: int, fill: bytes = b"a") -> Path:
    """A Shapefile of ``records`` null shapes and one text field ``width`` wide, written
    byte by byte (the structure the checks read: headers and sizes)."""
    shp = folder / "big.shp"
    header = bytearray(100)
    header[0:4] = (9994).to_bytes(4, "big")
    header[24:28] = (50).to_bytes(4, "big")  # length in 16-bit words: the header only
    header[28:32] = (1000).to_bytes(4, "little")
    shp.write_bytes(bytes(header))
    shx = bytearray(header)
    shx[24:28] = ((100 + 8 * records) // 2).to_bytes(4, "big")
    shp.with_suffix(".shx").write_bytes(bytes(shx) + bytes(8 * records))
    head = bytearray(32)
    head[0] = 3
    head[4:8] = records.to_bytes(4, "little")
    head[8:10] = (32 + 32 + 1).to_bytes(2, "little")
    head[10:12] = (1 + width).to_bytes(2, "little")
    field = bytearray(32)
    field[0:4] = b"TEN\0"
    field[11] = ord("C")
    field[16] = width
    with shp.with_suffix(".dbf").open("wb") as out:
        out.write(bytes(head) + bytes(field) + b"\x0d")
        row = b" " + fill * width
        for _ in range(0, records, 10000):
            out.write(row * min(10000, records))
    shp.with_suffix(".cpg").write_text("UTF-8")
    return shp


def test_dbf_is_checked_against_its_header_before_it_is_read(tmp_path: Path) -> None:
    """A .dbf whose header states more records than the file holds is refused from its
    first 32 bytes; a large one is checked for UTF-8 in bounded memory (the upload path
    used to read it whole: +820 MB of server memory for a zip bomb's .dbf)."""
    import tracemalloc

    from etl.report import LoadError
    from etl.sources import Part, check_shapefile

    def parts_of(shp: Path, dbf_size: int | None = None) -> dict[str, Part]:
        found = {}
        for ext in (".shp", ".shx", ".dbf", ".cpg"):
            path = shp.with_suffix(ext)
            size = dbf_size if ext == ".dbf" and dbf_size else path.stat().st_size
            found[ext] = Part(size, lambda path=path: path.open("rb"))
        return found

    shp = _bare_shapefile(tmp_path, 200_000, 250)
    assert shp.with_suffix(".dbf").stat().st_size > 50_000_000
    tracemalloc.start()
    check_shapefile(shp, "big", parts_of(shp), None, [])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MiB held to check a 50 MB .dbf"

    dbf = shp.with_suffix(".dbf")
    data = bytearray(dbf.read_bytes()[:4096])
    data[4:8] = (2**31 - 1).to_bytes(4, "little")  # forged: two billion records
    dbf.write_bytes(bytes(data))
    with pytest.raises(LoadError, match=r"big\.dbf is truncated: its header states "
                                        r"2,147,483,647 records"):
        check_shapefile(shp, "big", parts_of(shp), None, [])


def test_missing_prj_needs_stating_for_segments(loaded: Engine, tmp_path: Path) -> None:
    """(Parcels and plans: cadastre/tests/test_cadastre_loads.py and
    planning/tests/test_planning.py.)"""
    loader = LOADERS["price segments"]
    path = write(loader.base(), tmp_path / "segments.shp")
    path.with_suffix(".prj").unlink()
    before = snapshot(loaded)
    failed(loaded, loader.run(loaded, path, {}), before, "no coordinate reference system",
           "--crs EPSG:")
    unchanged(loader.run(loaded, path, {"crs": "EPSG:5899"}))


@per_loader(SHAPEFILE_LOADERS)
@pytest.mark.parametrize("wrong", ["TM-3 metres labelled EPSG:4326", "other meridian"])
def test_wrong_crs_rejects_every_feature(loaded: Engine, loader: Loader, tmp_path: Path,
                                         wrong: str) -> None:
    base = loader.base()
    epsg = base.crs.to_epsg()
    label = 4326 if wrong.startswith("TM-3") else OTHER_TM3[epsg]
    path = write(base.set_crs(label, allow_override=True), tmp_path / "wrong.shp")
    before = snapshot(loaded)
    result = loader.run(loaded, path, {})
    assert result.status == "rejected", result.summary()
    geometry = loader.field(path, "geometry")
    named = {i.feature_no for i in result.rejects if i.field == geometry}
    assert named >= set(range(1, len(base) + 1)), result.detail_lines()
    assert all("outside" in i.reason or "CRS" in i.reason
               for i in result.rejects if i.field == geometry)
    if label == 4326:  # said once for the file: the CRS is the likely culprit
        assert any(i.feature_no == 0 and "CRS" in i.reason and "probably wrong" in i.reason
                   for i in result.rejects)
    assert snapshot(loaded) == before


# --- geometry ---------------------------------------------------------------------------
def _bow_tie(geom: shapely.Geometry) -> shapely.Geometry:
    x0, y0, x1, y1 = geom.bounds
    return shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])


GEOMETRY_CASES = [
    # (case, loaders, replace the feature's geometry, reason)
    ("empty polygon", ["parcels", "plan", "price zones", "boundaries"],
     lambda g: shapely.Polygon(), "geometry is empty or missing"),
    ("point where a polygon belongs", ["parcels", "plan", "price zones", "boundaries"],
     lambda g: g.centroid, "Point where a polygon belongs"),
    ("self-intersecting polygon", ["price zones", "boundaries"], _bow_tie,
     "invalid geometry (Self-intersection"),
    ("empty line", ["price segments"], lambda g: shapely.LineString(),
     "geometry is empty or missing"),
    ("polygon where a line belongs", ["price segments"], lambda g: g.buffer(5),
     "Polygon where a road line belongs"),
    ("point where a line belongs", ["price segments"], lambda g: g.centroid,
     "Point where a road line belongs"),
]


@pytest.mark.parametrize(("case", "loader", "edit", "reason"), [
    pytest.param(c, LOADERS[n], e, r, id=f"{n}-{c}")
    for c, names, e, r in GEOMETRY_CASES for n in names])
def test_bad_geometry_is_rejected(loaded: Engine, tmp_path: Path, case: str, loader: Loader,
                                  edit: Callable, reason: str) -> None:
    frame = loader.base()
    index = min(2, len(frame) - 1)
    frame.loc[index, "geometry"] = edit(frame.geometry.iloc[index])
    path = write(frame, tmp_path / "bad.gpkg")
    before = snapshot(loaded)
    result = loader.run(loaded, path, {})
    rejected(loaded, result, before, index + 1, loader.field(path, "geometry"), reason)


@per_loader(list(LOADERS))
def test_z_and_m_are_dropped_and_reported(loaded: Engine, loader: Loader,
                                          tmp_path: Path) -> None:
    """XYZM geometries (GDAL keeps both): Z dropped per feature, M for the file."""
    flat = write(loader.base(), tmp_path / "flat.gpkg")
    path = tmp_path / "zm.gpkg"
    subprocess.run(["ogr2ogr", "-f", "GPKG", "-dim", "XYZM", str(path), str(flat)],
                   check=True, capture_output=True, timeout=60)
    result = loader.run(loaded, path, {})
    unchanged(result)
    reasons = [(i.feature_no, i.reason) for i in result.repairs]
    assert (1, "3-D coordinates: Z dropped") in reasons
    assert any(no == 0 and "M (measure) values dropped" in r for no, r in reasons), reasons


def _holed(geom: shapely.Geometry, metres: float) -> shapely.MultiPolygon:
    """The polygon with a hole and an island in the hole: a multipolygon with holes."""
    poly = geom.geoms[0] if geom.geom_type == "MultiPolygon" else geom
    hole, island = poly.buffer(-2 * metres), poly.buffer(-4 * metres)
    assert hole.geom_type == island.geom_type == "Polygon" and not island.is_empty
    return shapely.MultiPolygon([shapely.Polygon(poly.exterior, [hole.exterior]), island])


@pytest.mark.parametrize(("loader", "table", "key"), [
    (LOADERS["parcels"], "cadastre.parcel", "commune_code || '.' || sheet_no || '.' || parcel_no"),
    (LOADERS["plan"], "planning.zone", "zone_code"),
    (LOADERS["price zones"], "valuation.price_zone", "zone_code"),
], ids=["parcels", "plan", "price zones"])
def test_multipolygon_with_holes_loads_with_its_holes(loaded: Engine, loader: Loader,
                                                      tmp_path: Path, table: str,
                                                      key: str) -> None:
    frame = loader.base()
    metres = 1.0 if frame.crs.is_projected else 0.00001
    # the feature with the most room inside (a town's narrow lots have none for a hole)
    inner = shapely.area(shapely.buffer(np.asarray(frame.geometry.values), -5 * metres))
    i = int(np.argmax(inner))
    frame.loc[i, "geometry"] = _holed(frame.geometry.iloc[i], metres)
    if "DienTich" in frame:
        frame.loc[i, "DienTich"] = round(frame.geometry.iloc[i].area, 1)
    result = loader.run(loaded, write(frame, tmp_path / "holes.gpkg"), {})
    assert result.status == "loaded" and not result.rejects, (result.summary(),
                                                              result.detail_lines())
    assert result.updated == 1 or getattr(result, "table_changed", False)
    if loader.name == "parcels":
        first = f"{frame.MaXa[i]}.{frame.SoHieuToBa[i]}.{frame.SoThuTuThu[i]}"
    else:
        first = frame["MaODat" if loader.name == "plan" else "MaVung"].iloc[i]
    with loaded.connect() as conn:
        parts, holes, valid = conn.execute(text(
            f"SELECT ST_NumGeometries(geom), ST_NumInteriorRings(ST_GeometryN(geom, 1)), "
            f"ST_IsValid(geom) FROM {table} WHERE {key} = :k"), {"k": first}).one()
    assert (parts, holes, valid) == (2, 1, True)
    # deliver the original again, so the other cases compare with the sample
    assert loader.run(loaded, write(loader.base(), tmp_path / "restore.gpkg"),
                      {}).status == "loaded"


# --- attributes ---------------------------------------------------------------------------
@per_loader(list(LOADERS))
def test_null_required_field_is_rejected(loaded: Engine, loader: Loader,
                                         tmp_path: Path) -> None:
    frame = loader.base()
    index = min(2, len(frame) - 1)
    column = loader.fields["required"]
    frame[column] = frame[column].astype(object)
    frame.loc[index, column] = None
    path = write(frame, tmp_path / f"null{loader.suffix()}")
    before = snapshot(loaded)
    result = loader.run(loaded, path, {})
    field = loader.field(path, CANONICAL[(loader.name, "required")])
    reason = "missing" if loader.prefixed else "required value is missing"
    rejected(loaded, result, before, index + 1, field, reason)


@per_loader(list(LOADERS))
def test_over_long_text_is_rejected(loaded: Engine, loader: Loader, tmp_path: Path) -> None:
    """In a GeoPackage (a .dbf stops at 254 bytes): parcels' address (500), a zone's
    function (300), a road name (200), a value zone's code (50)."""
    frame = loader.base()
    index = min(2, len(frame) - 1)
    column = loader.fields["text"]
    if column not in frame:
        frame[column] = None
    frame[column] = frame[column].astype(object)
    frame.loc[index, column] = "Đường Hoàng Hoa Thám " * 40
    path = write(frame, tmp_path / "long.gpkg")
    before = snapshot(loaded)
    result = loader.run(loaded, path, {})
    rejected(loaded, result, before, index + 1,
             loader.field(path, CANONICAL[(loader.name, "text")]), "longer than")


@per_loader(["price segments", "price zones"])
def test_duplicate_key_in_file_is_rejected(loaded: Engine, loader: Loader,
                                           tmp_path: Path) -> None:
    """(Parcels and plan zones: cadastre/tests/test_cadastre_loads.py,
    planning/tests/test_planning.py.)"""
    frame = loader.base()
    if len(frame) < 2:  # the one value zone, delivered twice under its code
        frame = gpd.GeoDataFrame(
            [*frame.to_dict("records"), frame.iloc[0].to_dict()], crs=frame.crs)
    else:
        for column in ("TenDuong", "Tu", "Den"):
            frame.loc[3, column] = frame.loc[2, column]
    path = write(frame, tmp_path / "dup.gpkg")
    before = snapshot(loaded)
    result = loader.run(loaded, path, {})
    no = 2 if loader.name == "price zones" else 4
    field = loader.field(path, "zone_code" if loader.name == "price zones" else "road_name")
    reason = "the same zone code twice" if no == 2 else "the same segment is drawn twice"
    rejected(loaded, result, before, no, field, reason)


def test_plan_code_of_another_district_fails(loaded: Engine, tmp_path: Path) -> None:
    """Re-delivering a plan (same code, same district) updates it; the code of another
    district's plan is refused: it would have moved and replaced that plan's zones."""
    loader = LOADERS["plan"]
    path = write(loader.base(), tmp_path / "other.shp")
    before = snapshot(loaded)
    result = loader.run(loaded, path, {"sidecar": {"district": "003"}})
    failed(loaded, result, before, f"plan_code {PLAN_CODE} is already loaded for district "
                                   "001", "district 003")


def test_table_code_of_another_province_fails(loaded: Engine, tmp_path: Path) -> None:
    """A second delivery re-using Đà Nẵng's table code for Hà Nội is refused (it would
    have replaced Đà Nẵng's table); the same province's re-delivery is an update."""
    workbook = copy(WORKBOOK, tmp_path)
    sidecar = workbook.with_suffix(".prices.yaml")
    meta = yaml.safe_load(sidecar.read_text(encoding="utf-8"))
    sidecar.write_text(yaml.safe_dump({**meta, "province_code": "01"}, allow_unicode=True),
                       encoding="utf-8")
    before = snapshot(loaded)
    failed(loaded, load_prices(loaded, workbook), before,
           "table_code DN-2026 is already loaded for province 48", "province 01")


# --- text encodings of .dbf files ----------------------------------------------------------
ENCODINGS = [
    # (case, encode, .cpg, --encoding, outcome: "" = loads unchanged, else the error)
    ("utf-8 without .cpg", lambda s: s.encode("utf-8"), None, None, ""),
    ("cp1258 with .cpg 1258", cp1258, "1258", None, ""),
    ("cp1258 with --encoding", cp1258, None, "cp1258", ""),
    ("cp1258 without .cpg", cp1258, None, None, "not UTF-8 and there is no .cpg"),
    ("TCVN3 without .cpg", tcvn3, None, None, "not UTF-8 and there is no .cpg"),
    ("TCVN3 behind a .cpg saying UTF-8", tcvn3, "UTF-8", None, "its .cpg says 'UTF-8'"),
    ("TCVN3 read as cp1258", tcvn3, None, "cp1258", "not Unicode Vietnamese"),
    ("VNI without .cpg", vni, None, None, "not UTF-8 and there is no .cpg"),
    ("VNI behind a .cpg 1252", vni, "1252", None, "not Unicode Vietnamese"),
]


@per_loader(SHAPEFILE_LOADERS)
@pytest.mark.parametrize(("case", "encode", "cpg", "encoding", "error"), ENCODINGS,
                         ids=[c[0] for c in ENCODINGS])
def test_dbf_text_is_decoded_or_refused(loaded: Engine, loader: Loader, tmp_path: Path,
                                        case: str, encode: Callable, cpg: str | None,
                                        encoding: str | None, error: str) -> None:
    """Decoded right (the load then changes nothing: every name reads as loaded from the
    UTF-8 sample) or refused naming the .dbf field; never mojibake stored."""
    path = write(loader.base(), tmp_path / "enc.shp")
    transcode_dbf(path.with_suffix(".dbf"), encode)
    path.with_suffix(".cpg").unlink()
    if cpg:
        path.with_suffix(".cpg").write_text(cpg, encoding="ascii")
    before = snapshot(loaded)
    result = loader.run(loaded, path, {"encoding": encoding} if encoding else {})
    if not error:
        unchanged(result)
        assert snapshot(loaded) == before
        if cpg is None and encoding is None:
            assert any("read as UTF-8" in i.reason for i in result.repairs)
        return
    failed(loaded, result, before, error, "field ")
    assert "feature " in result.message
    assert any(f"field {c}" in result.message for c in loader.base().columns)


# --- archives and sizes --------------------------------------------------------------------
def _zip(tmp_path: Path, loader: Loader, extra: dict[str, bytes] | None = None) -> Path:
    """The loader's base delivery as a Shapefile zipped with ``extra`` members."""
    (tmp_path / "src").mkdir()
    shp = write(loader.base(), tmp_path / "src" / "delivery.shp")
    archive = tmp_path / "delivery.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for part in shp.parent.glob("delivery.*"):
            zf.write(part, part.name)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return archive


@per_loader(SHAPEFILE_LOADERS)
def test_zipped_shapefile_loads(loaded: Engine, loader: Loader, tmp_path: Path) -> None:
    """Loaders read a .zip through GDAL's /vsizip/: accepted, after the checks below."""
    unchanged(loader.run(loaded, _zip(tmp_path, loader), {}))


@per_loader(SHAPEFILE_LOADERS)
def test_zip_bomb_is_refused(loaded: Engine, loader: Loader, tmp_path: Path) -> None:
    """64 MiB of zeros deflate to ~64 KiB: refused by ratio before GDAL opens the zip."""
    archive = _zip(tmp_path, loader, {"delivery.shp.xml": bytes(64 << 20)})
    before = snapshot(loaded)
    failed(loaded, loader.run(loaded, archive, {}), before, "delivery.shp.xml expands",
           "zip bomb")


@per_loader(SHAPEFILE_LOADERS)
def test_zip_entry_larger_than_stated_is_refused(loaded: Engine, loader: Loader,
                                                 tmp_path: Path) -> None:
    """A directory that understates an entry's size (the classic way past a size check)."""
    archive = _zip(tmp_path, loader)
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        local = zf.getinfo("delivery.dbf").header_offset
    central = data.find(b"PK\x01\x02")
    while data[central + 46:central + 58] != b"delivery.dbf":
        central = data.find(b"PK\x01\x02", central + 4)
    for at in (local + 22, central + 24):  # uncompressed size: local and central header
        data[at:at + 4] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    before = snapshot(loaded)
    failed(loaded, loader.run(loaded, archive, {}), before,
           "delivery.dbf in the .zip is damaged or does not match its stated size")


@pytest.fixture
def limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
    """Set LIS_MAX_DELIVERY_BYTES for one test."""
    def set_limit(value: int) -> None:
        monkeypatch.setenv("LIS_MAX_DELIVERY_BYTES", str(value))
        get_settings.cache_clear()
    yield set_limit
    monkeypatch.delenv("LIS_MAX_DELIVERY_BYTES", raising=False)
    get_settings.cache_clear()


@per_loader(SHAPEFILE_LOADERS)
def test_delivery_over_the_size_limit_fails(loaded: Engine, loader: Loader, tmp_path: Path,
                                            limit: Callable[[int], None]) -> None:
    # 900 kB of zeros: compressible, yet under the zip-bomb ratio's 1 MiB floor
    archive = _zip(tmp_path, loader, {"delivery.shp.xml": bytes(900_000)})
    with zipfile.ZipFile(archive) as zf:
        expanded = sum(i.file_size for i in zf.infolist())
    assert archive.stat().st_size < expanded - 1
    before = snapshot(loaded)
    limit(expanded - 1)  # the zip itself is under the limit, what it expands to is not
    failed(loaded, loader.run(loaded, archive, {}), before, "the .zip expands to",
           f"limit of {expanded - 1:,}", "LIS_MAX_DELIVERY_BYTES")
    shp = tmp_path / "src" / "delivery.shp"
    limit(1000)
    failed(loaded, loader.run(loaded, shp, {}), before, "over the limit of 1,000")


@per_loader(SHAPEFILE_LOADERS)
@pytest.mark.parametrize("suffix", [".rar", ".7z", ".tar.gz"])
def test_other_archives_are_unsupported(loaded: Engine, loader: Loader, tmp_path: Path,
                                        suffix: str) -> None:
    path = tmp_path / f"delivery{suffix}"
    path.write_bytes(zlib.compress(bytes(1000)))
    before = snapshot(loaded)
    failed(loaded, loader.run(loaded, path, {}), before, "unsupported archive")


def test_workbook_zip_bomb_is_refused(loaded: Engine, tmp_path: Path) -> None:
    """An .xlsx is a zip too: checked the same way before openpyxl reads it."""
    workbook = copy(WORKBOOK, tmp_path)
    with zipfile.ZipFile(workbook, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/media/padding.bin", bytes(64 << 20))
    before = snapshot(loaded)
    failed(loaded, load_prices(loaded, workbook), before, "padding.bin expands", "zip bomb")


# --- price sheets: Excel and CSV -----------------------------------------------------------
SHEET = "Đất ở đô thị"


def _workbook(tmp_path: Path, edit: Callable[[openpyxl.worksheet.worksheet.Worksheet], None]
              ) -> dict:
    workbook = copy(WORKBOOK, tmp_path)
    book = openpyxl.load_workbook(workbook)
    edit(book[SHEET])
    book.save(workbook)
    return {"path": workbook, "segments": copy(SEGMENTS, tmp_path),
            "zones": copy(ZONES, tmp_path)}


def _set(**cells: object) -> Callable:
    def edit(sheet: openpyxl.worksheet.worksheet.Worksheet) -> None:
        for cell, value in cells.items():
            sheet[cell] = value
    return edit


def _merge(cells: str) -> Callable:
    def edit(sheet: openpyxl.worksheet.worksheet.Worksheet) -> None:
        sheet.merge_cells(cells)
    return edit


SHEET_CASES = [
    # (case, edit, row, column heading, reason)
    ("text in a number cell", _set(G6="42.800.000 đồng"), 6, "VT2",
     "text in a price cell: not a number (cell G6)"),
    ("formula without a computed value", _set(G6="=F6/2"), 6, "VT2",
     "formula =F6/2 has no computed value"),
    ("merged price cells", _merge("F6:G6"), 6, "VT2", "part of merged cells F6:G6"),
    ("over-long road name", _set(B10="Đường Lê Duẩn " * 20), 10, "Tên đường phố",
     "longer than 200 characters"),
    ("duplicate segment", _set(C7="Đầu đường", D7="Giao Đường Nguyễn Văn Linh"), 7,
     "Tên đường phố", "duplicate segment: row 6"),
]


@pytest.mark.parametrize(("case", "edit", "row", "column", "reason"), SHEET_CASES,
                         ids=[c[0] for c in SHEET_CASES])
def test_bad_sheet_cell_is_rejected(loaded: Engine, tmp_path: Path, case: str,
                                    edit: Callable, row: int, column: str,
                                    reason: str) -> None:
    delivery = _workbook(tmp_path, edit)
    before = snapshot(loaded)
    result = load_prices(loaded, **delivery)
    rejected(loaded, result, before, row, f"{SHEET}!{column}", reason)
    line = next(x for x in result.detail_lines()
                if f" column {column}: " in x and reason.split(" (")[0] in x)
    assert line.startswith(f"{WORKBOOK.name}: '{SHEET}' row {row} column {column}: ")


def test_legacy_font_text_in_a_sheet_fails(loaded: Engine, tmp_path: Path) -> None:
    """Road names typed with a .VnTime (TCVN3) font: Excel holds the font's glyphs."""
    delivery = _workbook(tmp_path, _set(B6=tcvn3("Đường Trần Phú").decode("cp1252")))
    before = snapshot(loaded)
    failed(loaded, load_prices(loaded, **delivery), before,
           f"sheet '{SHEET}' cell B6 has text that is not Unicode Vietnamese")


CSV_CASES = [
    # (case, bytes of the CSV from its UTF-8 text, error or "" = loads unchanged, repair)
    ("BOM", lambda t: b"\xef\xbb\xbf" + t.encode("utf-8"), "", None),
    ("cp1258", cp1258, "", "not UTF-8: read as Windows-1258"),
    ("TCVN3", tcvn3, "is not Unicode Vietnamese", None),
    ("VNI", vni, "is not Unicode Vietnamese", None),
]


@pytest.mark.parametrize(("case", "encode", "error", "repair"), CSV_CASES,
                         ids=[c[0] for c in CSV_CASES])
def test_csv_encoding_is_decoded_or_refused(loaded: Engine, tmp_path: Path, case: str,
                                            encode: Callable, error: str,
                                            repair: str | None) -> None:
    csv = copy(CSV, tmp_path)
    source = CSV.read_text(encoding="utf-8-sig")
    csv.write_bytes(encode(source))
    before = snapshot(loaded)
    result = load_prices(loaded, csv)
    if error:
        failed(loaded, result, before, error, "cell ")
        return
    unchanged(result)
    assert snapshot(loaded) == before
    if repair:
        assert any(repair in i.reason for i in result.repairs), result.repairs
