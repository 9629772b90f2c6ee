"""Valuation: loading the sample price tables (Excel, CSV, GeoPackage, Shapefile TM-3), bad
tables, idempotency, and parcel values checked by hand against the workbook's numbers and
the rule definitions of the sidecar, computed here independently (openpyxl, shapely)."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import openpyxl
import pyogrio
import pytest
import shapely
import yaml
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine

from cadastre.loader import load_parcels
from landplatform.db import make_engine
from support import PROJECT, SAMPLES, create_database
from valuation.engine import valuate
from valuation.loader import load_prices, load_sample_prices

PRICES = SAMPLES / "prices"
DATE = date(2026, 6, 1)
DISTRICTS = ("001", "491", "492")
TM3 = {"01": 5897, "48": 5899}  # province -> VN-2000 TM-3 (domain.md)
# The valuation land types of the cadastre's codes, and the fallback beyond priced roads.
LAND_TYPE = {"ODT": "ODT", "ONT": "ONT", "TMD": "TMD", "SKC": "SKC", "LUC": "LUC",
             "LUK": "LUC", "HNK": "HNK", "CLN": "CLN", "NTS": "NTS", "RSX": "RSX"}
URBAN_TYPES = ("ODT", "TMD", "SKC")  # every sample commune is a ward (phường): all urban
PRICE_TABLES = ("valuation.price_table", "valuation.price_segment", "valuation.price_rate",
                "valuation.price_area_class", "valuation.price_zone",
                "valuation.price_coefficient", "valuation.adjustment_rule")


@pytest.fixture(scope="module")
def prices_manifest() -> dict:
    return json.loads((PRICES / "manifest.json").read_text(encoding="utf-8"))


def _delivery(entry: dict, folder: Path = PRICES) -> dict:
    return {"path": folder / entry["file"],
            "segments": folder / entry["segments"] if entry.get("segments") else None,
            "zones": folder / entry["zones"] if entry.get("zones") else None}


@pytest.fixture(scope="module")
def db(server_url: URL, manifest: list[dict]) -> Iterator[Engine]:
    engine = make_engine(create_database(server_url, "lis_valuation"))
    for entry in manifest:
        if entry["district_code"] in DISTRICTS:
            assert load_parcels(engine, SAMPLES / entry["file"]).status == "loaded"
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def loaded(db: Engine, prices_manifest: dict) -> dict:
    """The sample price tables, loaded the way ``lis load samples`` does."""
    messages: list[str] = []
    assert load_sample_prices(db, PRICES, lambda m, err=False: messages.append(m)), messages
    with db.connect() as conn:
        runs = conn.execute(text("""
            SELECT file_name, status, inserted, updated, unchanged, rejected
              FROM etl.load_run WHERE kind = 'price_table' ORDER BY run_id""")).all()
    return {Path(r.file_name).name: r for r in runs}


@pytest.fixture(scope="module")
def valued(db: Engine, loaded: dict) -> dict[str, int]:
    return {d: valuate(db, d, DATE).run_id for d in DISTRICTS}


def snapshot(engine: Engine, tables: tuple[str, ...] = PRICE_TABLES) -> dict:
    out = {}
    with engine.connect() as conn:
        for table in tables:
            out[table] = tuple(conn.execute(text(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                f" FROM {table} t")).one())
    return out


# --- an independent reading of the workbooks and sidecars ------------------------------
def vnd(value: object) -> int:
    """A price cell: a number, or Vietnamese-formatted text "1.200.000"."""
    return value if isinstance(value, int) else int(str(value).replace(".", ""))


def ward_codes() -> dict[str, str]:
    """Upper-case 2025 ward name -> code (the headings of the 2026 sample tables)."""
    with (PROJECT / "landplatform" / "reference" / "admin_units_2025_crosswalk.csv").open(
            encoding="utf-8") as fh:
        return {r["new_commune_name"].upper(): r["new_commune_code"]
                for r in csv.DictReader(fh) if r["new_province_code"] in TM3}


def split(text: str | None) -> tuple[str | None, str | None]:
    """The sample's one-column segments: "Từ A đến B", "Đoạn từ A đến B", whole road."""
    if text is None or text in ("Cả đường", "Toàn tuyến"):
        return None, None
    m = re.match(r"^(?:Đoạn )?[Tt]ừ (.+?) đến (.+)$", text)
    assert m, text
    return m.group(1), m.group(2)


@dataclass
class Table:
    # (ward, road, from, to) -> land type -> prices by position
    segments: dict[tuple[str, str, str | None, str | None], dict[str, list[int]]]
    remaining: dict[tuple[str, str], list[int]]  # (ward, land type) -> prices
    rural: dict[int, list[int]]  # area class -> ONT prices by position
    agricultural: dict[tuple[str, int], list[int]]
    classes: dict[str, int]
    rules: dict
    coefficients: list[dict]
    urban_rows: int = 0


def read_urban(book: openpyxl.Workbook, sheet: str, side: dict, wards: dict[str, str],
               table: Table, land_type: str) -> None:
    """One urban sheet as a reader sees it: headings name the 2025 wards, a road name
    merged down over its segments, blank prices taken from the road-class sheet."""
    rows = list(book[sheet].iter_rows(min_row=1, values_only=True))
    one = rows[2][3] == "Loại đường"  # the segment in one column
    first_price = 4 if one else 5
    class_sheet = next((s["sheet"] for s in side["sheets"] if s["role"] == "road_classes"
                        and s["land_type"] == land_type), None)
    by_class = {} if class_sheet is None else {
        r[1]: [vnd(v) for v in r[2:6]]
        for r in book[class_sheet].iter_rows(min_row=5, values_only=True)}
    ward = road = None
    for row in rows[4:]:
        if row[1] and all(v is None for v in row[2:]):  # a section row
            ward = wards.get(row[1], ward)
            continue
        road = row[1] or road
        road_class = row[3 if one else 4]
        prices = row[first_price:first_price + 4]
        prices = by_class[road_class] if prices[0] is None else [vnd(v) for v in prices]
        table.urban_rows += 1
        if road == "Các đường còn lại":
            table.remaining[(ward, land_type)] = prices
            continue
        start, end = split(row[2]) if one else (row[2], row[3])
        table.segments.setdefault((ward, road, start, end), {})[land_type] = prices


def read_table(workbook: Path) -> Table:
    book = openpyxl.load_workbook(workbook, data_only=True)  # formulas: their stored values
    side = yaml.safe_load(workbook.with_suffix(".prices.yaml").read_text(encoding="utf-8"))
    table = Table({}, {}, {}, {}, {}, side["rules"], side.get("coefficients") or [])
    wards = ward_codes()
    for spec in side["sheets"]:
        if spec["role"] == "segments":
            read_urban(book, spec["sheet"], side, wards, table, spec["land_type"])
    table.rural = {int(row[1].split()[-1]): [vnd(v) for v in row[2:6]]
                   for row in book["Đất ở nông thôn"].iter_rows(min_row=5, values_only=True)}
    code = None
    for row in book["Đất nông nghiệp"].iter_rows(min_row=5, values_only=True):
        code = row[2] or code
        table.agricultural[(code, int(row[3].split()[-1]))] = [vnd(v) for v in row[4:8]]
    table.classes = {row[1]: row[3] for row in book["Phân khu vực"].iter_rows(
        min_row=4, values_only=True)}
    return table


@pytest.fixture(scope="module")
def tables(prices_manifest: dict) -> dict[str, Table]:
    return {e["province_code"]: read_table(PRICES / e["file"])
            for e in prices_manifest["deliveries"] if e["format"] == "xlsx"}


# --- the rules, restated here (the engine's SQL is not consulted) ----------------------
def band(bands: list[dict], distance: float) -> int | None:
    for b in bands:
        if b["max_m"] is None or distance <= b["max_m"]:
            return b["position"]
    return None


def depth_factor(parcel: shapely.Geometry, line: shapely.Geometry, rule: dict) -> Decimal:
    """Layers by distance from the segment: area share x pct, 6 decimals."""
    def within(m: float | None) -> float:
        if m is None:
            return parcel.area
        return parcel.intersection(line.buffer(m, quad_segs=8)).area if m > 0 else 0.0
    areas = [max(0.0, within(layer["to_m"]) - within(layer["from_m"]))
             for layer in rule["layers"]]
    ratio = sum(a * layer["pct"] for a, layer in zip(areas, rule["layers"], strict=True)) \
        / 100 / sum(areas)
    # PostgreSQL turns a double into numeric at 15 significant digits, then rounds.
    return Decimal(f"{ratio:.15g}").quantize(Decimal("0.000001"), ROUND_HALF_UP)


@dataclass
class Expected:
    basis: str | None
    land_type: str | None
    unit_price: int | None
    position: int | None
    factor: Decimal | None
    value: Decimal | None
    roads_in_front: int = 0
    candidates: int = 0
    segment: tuple[str, str, str] | None = None


class Model:
    """A district's parcels and priced segments, valued by the rules written out above."""

    def __init__(self, db: Engine, district: str, table: Table, zones: Path | None) -> None:
        with db.connect() as conn:
            province = conn.execute(text("SELECT DISTINCT province_code FROM cadastre.parcel "
                                         "WHERE district_code = :d"), {"d": district}).scalar()
            epsg = TM3[province]
            self.parcels = {r.uid: r for r in conn.execute(text("""
                SELECT uid, commune_code, current_commune_code, area_m2,
                       ST_AsBinary(ST_Transform(geom, :e)) AS tm3, ST_AsBinary(geom) AS wgs,
                       ST_AsBinary(ST_PointOnSurface(geom)) AS pos
                  FROM cadastre.parcel WHERE district_code = :d"""), {"d": district, "e": epsg})}
            self.parts = conn.execute(text("""
                SELECT parcel_uid, seq, code, area_m2, is_primary FROM cadastre.parcel_land_use
                 WHERE district_code = :d ORDER BY parcel_uid, seq"""), {"d": district}).all()
            self.segments = conn.execute(text("""
                SELECT s.commune_code, s.road_name, s.from_desc, s.to_desc,
                       ST_AsBinary(ST_Transform(s.geom, :e)) AS tm3
                  FROM valuation.price_segment s
                 WHERE s.district_code = :d AND s.geom IS NOT NULL ORDER BY s.segment_id
            """), {"d": district, "e": epsg}).all()
            self.sites = dict(conn.execute(text(
                "SELECT parcel_uid, height_diff_m FROM valuation.parcel_site "
                "WHERE district_code = :d"), {"d": district}).all())
        self.district, self.province, self.table = district, province, table
        self.lines = [shapely.from_wkb(bytes(s.tm3)) for s in self.segments]
        self.geoms = {uid: shapely.from_wkb(bytes(p.tm3)) for uid, p in self.parcels.items()}
        self.zones = []
        if zones is not None:
            # in CRS84, as the parcels' point on surface (the engine's, from PostGIS: the
            # rule is the zone's, not a second GEOS's choice of a point)
            frame = pyogrio.read_dataframe(zones).to_crs(4326)
            self.zones = [(z.LoaiDat, int(z.GiaDat), z.geometry, z.MaHuyen)
                          for z in frame.itertuples() if z.MaHuyen == district]
        self.has_area = {}
        for part in self.parts:
            self.has_area[part.parcel_uid] = (self.has_area.get(part.parcel_uid, False)
                                              or part.area_m2 is not None)

    def k(self, land_type: str, commune: str | None, position: int | None) -> Decimal | None:
        """The most specific K: commune before district before province, a position's own
        before every position's."""
        mine = [c for c in self.table.coefficients if c["land_type"] == land_type
                and c["year"] == DATE.year and c.get("district_code") in (self.district, None)
                and c.get("commune_code") in (commune, None)
                and c.get("position") in (position, None)]
        mine.sort(key=lambda c: (c.get("commune_code") is None, c.get("district_code") is None,
                                 c.get("position") is None))
        return Decimal(str(mine[0]["k"])) if mine else None

    def expect(self, part) -> Expected:  # noqa: ANN001 - a result row
        rules = self.table.rules
        land_type = LAND_TYPE.get(part.code)
        parcel = self.parcels[part.parcel_uid]
        geom = self.geoms[part.parcel_uid]
        if part.area_m2 is not None:
            area = part.area_m2
        elif part.is_primary and not self.has_area[part.parcel_uid]:
            area = parcel.area_m2
        else:
            area = None
        if land_type is None:
            return Expected(None, None, None, None, None, None)
        distances = [geom.distance(line) for line in self.lines]
        front = rules["position_band"]["segment"][0]["max_m"]
        roads = {s.road_name for s, d in zip(self.segments, distances, strict=True)
                 if d <= front}
        factor = Decimal(1)
        out = None
        point = shapely.from_wkb(bytes(parcel.pos))
        for zone_type, price, polygon, _ in self.zones:
            if zone_type == land_type and polygon.intersects(point):
                out = Expected("zone", land_type, price, None, factor, None)
        candidates = []
        for i, (seg, d) in enumerate(zip(self.segments, distances, strict=True)):
            position = band(rules["position_band"]["segment"], d)  # no alley widths here
            rates = self.table.segments[(seg.commune_code, seg.road_name, seg.from_desc,
                                         seg.to_desc)]
            if position is not None and land_type in rates:
                candidates.append((-rates[land_type][position - 1], d, i, position))
        if out is None and candidates:
            price, _, i, position = min(candidates)
            seg = self.segments[i]
            out = Expected("segment", land_type, -price, position, factor, None,
                           len(roads), len(candidates),
                           (seg.commune_code, seg.road_name, seg.from_desc, seg.to_desc))
            if position in rules["depth_layer"]["positions"]:
                out.factor *= depth_factor(geom, self.lines[i], rules["depth_layer"])
            two = rules["two_frontages"]
            if position == 1 and len(roads) >= two["min_roads"]:
                out.factor *= Decimal(str(two["pct"])) / 100
            height = self.sites.get(part.parcel_uid)
            rule = rules["height_difference"]
            if height is not None and height >= Decimal(str(rule["min_m"])):
                out.factor *= Decimal(str(rule["pct"])) / 100
        # a 2026 table names the 2025 communes: its rows are the parcel's 2025 commune's
        commune = parcel.current_commune_code
        if out is None and land_type in URBAN_TYPES:  # urban: the ward's remaining roads
            prices = self.table.remaining.get((commune, land_type))
            position = rules["position_width"]["undrawn_position"]
            if prices:
                out = Expected("segment", land_type, prices[position - 1], position, factor,
                               None)
        elif out is None:  # never for urban land: the rural matrix
            area_class = self.table.classes.get(commune)
            position = band(rules["position_band"]["area"], min(distances))
            prices = None
            if area_class is not None and land_type == "ONT":
                prices = self.table.rural.get(area_class)
            elif area_class is not None:
                prices = self.table.agricultural.get((land_type, area_class))
            if prices:
                out = Expected("area", land_type, prices[position - 1], position, factor,
                               None)
        if out is None:
            return Expected(None, land_type, None, None, None, None)
        k = self.k(out.land_type, commune, out.position)
        if k is not None:
            out.factor *= k
        if area is not None:
            out.value = (area * out.unit_price * out.factor).quantize(Decimal(1), ROUND_HALF_UP)
        return out


def stored(db: Engine, district: str, run_id: int | None = None) -> dict[tuple[int, int], dict]:
    with db.connect() as conn:
        rows = conn.execute(text("""
            SELECT v.* FROM valuation.parcel_value v
              JOIN valuation.valuation_run r USING (run_id)
             WHERE v.district_code = :d
               AND (v.run_id = :run OR (CAST(:run AS bigint) IS NULL AND r.is_latest))
        """), {"d": district, "run": run_id}).mappings().all()
    return {(r["parcel_uid"], r["seq"]): dict(r) for r in rows}


@pytest.fixture(scope="module")
def models(db: Engine, valued: dict, tables: dict, prices_manifest: dict) -> dict[str, Model]:
    zones = next(PRICES / e["zones"] for e in prices_manifest["deliveries"] if e.get("zones"))
    province = {"001": "01", "491": "48", "492": "48"}
    return {d: Model(db, d, tables[province[d]], zones) for d in DISTRICTS}


# --- loading ----------------------------------------------------------------------------
def test_each_sample_format_loads(db: Engine, loaded: dict, prices_manifest: dict,
                                  tables: dict) -> None:
    files = {e["file"]: e for e in prices_manifest["deliveries"]}
    assert {e["format"] for e in files.values()} == {"xlsx", "csv"}
    for name, run in loaded.items():
        assert run.status == "loaded" and run.rejected == 0, name
    csv_name = next(n for n, e in files.items() if e["format"] == "csv")
    assert loaded[csv_name].inserted == loaded[csv_name].updated == 0  # same rates as Excel
    assert loaded[csv_name].unchanged > 0
    with db.connect() as conn:
        counts = dict(conn.execute(text("""
            SELECT t.table_code, count(*) FROM valuation.price_rate r
              JOIN valuation.price_table t USING (table_id) GROUP BY 1""")).all())
        geoms = dict(conn.execute(text("""
            SELECT t.table_code, count(s.geom) FROM valuation.price_segment s
              JOIN valuation.price_table t USING (table_id) GROUP BY 1""")).all())
        segments = dict(conn.execute(text("""
            SELECT t.table_code, count(*) FROM valuation.price_segment s
              JOIN valuation.price_table t USING (table_id) GROUP BY 1""")).all())
        zones = conn.execute(text("SELECT zone_code, vnd_per_m2, standard_parcel_ref "
                                  "FROM valuation.price_zone")).all()
    for entry in files.values():
        if entry["format"] != "xlsx":
            continue
        table = tables[entry["province_code"]]
        expected = (sum(len(p) for rates in table.segments.values() for p in rates.values())
                    + sum(map(len, table.remaining.values()))
                    + sum(map(len, table.rural.values()))
                    + sum(map(len, table.agricultural.values())))
        assert counts[entry["table_code"]] == expected
        # every urban row is a segment of its own: no false duplicates, none lost
        rows = sum(entry["urban_rows"].values())
        assert segments[entry["table_code"]] == rows
        sheets = {lt for rates in table.segments.values() for lt in rates}
        assert table.urban_rows == rows * len(sheets)
        # every drawn segment got its geometry: GeoPackage (WGS84), Shapefile (TM-3)
        assert geoms[entry["table_code"]] == entry["drawn_segments"]
    zone = next(e["zone"] for e in files.values() if e.get("zone"))
    assert [(z.zone_code, int(z.vnd_per_m2), z.standard_parcel_ref) for z in zones] == \
        [(zone["zone_code"], zone["vnd_per_m2"], zone["standard_parcel"])]


def test_csv_alone_gives_the_workbooks_rates(db: Engine, loaded: dict,
                                             prices_manifest: dict) -> None:
    """The CSV export (empty merged cells, text numbers) read as a table of its own."""
    entry = next(e for e in prices_manifest["deliveries"] if e["format"] == "csv")
    result = load_prices(db, PRICES / entry["file"], table_code="CSV-ONLY")
    assert result.status == "loaded", result.detail_lines()
    with db.connect() as conn:
        rows = conn.execute(text("""
            SELECT t.table_code, s.commune_code, s.road_name, s.from_desc, s.to_desc,
                   r.position, r.vnd_per_m2
              FROM valuation.price_rate r JOIN valuation.price_table t USING (table_id)
              JOIN valuation.price_segment s USING (segment_id)
             WHERE r.land_type = 'ODT' AND t.table_code IN ('CSV-ONLY', :code)
        """), {"code": entry["table_code"]}).all()
        conn.execute(text("DELETE FROM valuation.price_table WHERE table_code = 'CSV-ONLY'"))
        conn.commit()
    by_table: dict[str, set] = {}
    for r in rows:
        by_table.setdefault(r.table_code, set()).add(tuple(r)[1:])
    assert by_table["CSV-ONLY"] == by_table[entry["table_code"]]
    xlsx = next(e for e in prices_manifest["deliveries"]
                if e["format"] == "xlsx" and e["table_code"] == entry["table_code"])
    assert len(by_table["CSV-ONLY"]) == sum(xlsx["urban_rows"].values()) * 4


def test_reload_changes_nothing(db: Engine, loaded: dict, prices_manifest: dict) -> None:
    before = snapshot(db)
    for entry in prices_manifest["deliveries"]:
        result = load_prices(db, **_delivery(entry))
        assert result.status == "loaded", result.detail_lines()
        assert result.inserted == result.updated == 0 and not result.table_changed
    assert snapshot(db) == before


# --- bad tables: clear errors naming sheet, row and column; nothing changes ------------
def _copy_delivery(entry: dict, tmp: Path) -> dict:
    for name in (entry["file"], Path(entry["file"]).with_suffix(".prices.yaml").name):
        shutil.copy(PRICES / name, tmp / name)
    for key in ("segments", "zones"):
        if entry.get(key):
            for part in PRICES.glob(Path(entry[key]).stem + ".*"):
                shutil.copy(part, tmp / part.name)
    return _delivery(entry, tmp)


def _edit(path: Path, sheet: str, cell: str, value: object) -> int:
    """One cell changed; the formulas become their stored values (openpyxl saves no
    computed values), as "paste values" in Excel does."""
    book = openpyxl.load_workbook(path, data_only=True)
    book[sheet][cell] = value
    book.save(path)
    return int("".join(ch for ch in cell if ch.isdigit()))


def _rejected(db: Engine, delivery: dict, before: dict) -> list:
    result = load_prices(db, **delivery)
    assert result.status == "rejected", result.summary()
    assert snapshot(db) == before  # nothing changed
    with db.connect() as conn:
        run = conn.execute(text("SELECT status FROM etl.load_run WHERE run_id = :r"),
                           {"r": result.run_id}).scalar()
        recorded = conn.execute(text("SELECT feature_no, field, reason, value FROM "
                                     "etl.load_reject WHERE run_id = :r"),
                                {"r": result.run_id}).all()
    assert run == "rejected"
    assert {(i.feature_no, i.field) for i in result.rejects} <= {(r[0], r[1]) for r in recorded}
    return result.rejects


@pytest.fixture
def hanoi(prices_manifest: dict, tmp_path: Path) -> dict:
    entry = next(e for e in prices_manifest["deliveries"] if e["province_code"] == "01")
    return _copy_delivery(entry, tmp_path)


def test_missing_position_is_rejected(db: Engine, loaded: dict, hanoi: dict) -> None:
    before = snapshot(db)
    row = _edit(hanoi["path"], "Đất ở đô thị", "G8", None)
    rejects = _rejected(db, hanoi, before)
    assert [(i.feature_no, i.field) for i in rejects] == [(row, "Đất ở đô thị!VT3")]
    assert "missing price for position 3" in rejects[0].reason and "G8" in rejects[0].reason


def test_missing_position_column_fails(db: Engine, loaded: dict, hanoi: dict) -> None:
    before = snapshot(db)
    _edit(hanoi["path"], "Đất TMDV đô thị", "H4", None)  # the VT4 heading
    result = load_prices(db, **hanoi)
    assert result.status == "failed" and "VT4" in result.message
    assert "Đất TMDV đô thị" in result.message
    assert snapshot(db) == before


def test_text_in_price_cell_is_rejected(db: Engine, loaded: dict, hanoi: dict) -> None:
    before = snapshot(db)
    row = _edit(hanoi["path"], "Đất ở đô thị", "F9", "liên hệ")
    rejects = _rejected(db, hanoi, before)
    assert [(i.feature_no, i.field, i.value) for i in rejects] == \
        [(row, "Đất ở đô thị!VT2", "liên hệ")]
    assert "text in a price cell" in rejects[0].reason and "F9" in rejects[0].reason


def test_increasing_positions_are_rejected(db: Engine, loaded: dict, hanoi: dict) -> None:
    before = snapshot(db)
    book = openpyxl.load_workbook(hanoi["path"], data_only=True)
    vt1 = vnd(book["Đất TMDV đô thị"]["E6"].value)
    row = _edit(hanoi["path"], "Đất TMDV đô thị", "F6", vt1 + 1000)
    rejects = _rejected(db, hanoi, before)
    assert [(i.feature_no, i.field) for i in rejects] == [(row, "Đất TMDV đô thị!VT2")]


def test_unknown_land_type_is_rejected(db: Engine, loaded: dict, hanoi: dict) -> None:
    before = snapshot(db)
    book = openpyxl.load_workbook(hanoi["path"])
    sheet = book["Đất nông nghiệp"]
    cell = next(c for c in sheet["C"] if c.value == "CLN")
    row = _edit(hanoi["path"], "Đất nông nghiệp", cell.coordinate, "XYZ")
    rejects = _rejected(db, hanoi, before)
    assert (row, "Đất nông nghiệp!Mã loại đất") in [(i.feature_no, i.field) for i in rejects]
    assert all("unknown land type 'XYZ'" in i.reason for i in rejects
               if i.field.endswith("Mã loại đất"))


def test_overlapping_segments_are_rejected(db: Engine, loaded: dict, hanoi: dict) -> None:
    before = snapshot(db)
    frame = pyogrio.read_dataframe(hanoi["segments"])
    road = frame.TenDuong.iloc[0]
    first, second = frame.index[frame.TenDuong == road][:2]
    # the second segment drawn back over the whole first one: same road, shared stretch
    frame.loc[second, "geometry"] = shapely.line_merge(shapely.union(
        frame.geometry[first], frame.geometry[second]))
    hanoi["segments"].unlink()
    pyogrio.write_dataframe(frame, hanoi["segments"], layer="doan_duong")
    rejects = _rejected(db, hanoi, before)
    assert {i.feature_no for i in rejects} == {int(first) + 1, int(second) + 1}
    assert all("overlaps segment feature" in i.reason and "of the same road" in i.reason
               and i.field == f"{hanoi['segments'].name}!geometry" for i in rejects)


def test_quarantine_keeps_the_bad_rows_old_rates(db: Engine, loaded: dict,
                                                 hanoi: dict) -> None:
    before = snapshot(db)
    _edit(hanoi["path"], "Đất ở đô thị", "F9", "liên hệ")
    result = load_prices(db, **hanoi, quarantine=True)
    assert result.status == "loaded" and result.rejected == 1
    assert result.inserted == result.updated == 0
    assert snapshot(db) == before


# --- valuation: hand-checked parcels -----------------------------------------------------
def _pick(model: Model, stored_rows: dict, want, n: int = 3) -> list:  # noqa: ANN001
    found = []
    for part in model.parts:
        exp = model.expect(part)
        if want(part, exp):
            found.append((part, exp, stored_rows[(part.parcel_uid, part.seq)]))
            if len(found) == n:
                break
    assert found, "no parcel of this kind in the sample"
    return found


def _vt(table: Table, segment: tuple, land_type: str, position: int) -> int:
    return table.segments[segment][land_type][position - 1]


def _k(model: Model, part: object, land_type: str, position: int) -> Decimal:
    """The table's K for the part (Hà Nội's: ODT at position 1 in the 2025 ward 00004)."""
    ward = model.parcels[part.parcel_uid].current_commune_code
    for c in model.table.coefficients:
        if c["land_type"] == land_type and c.get("position") in (None, position) \
                and c.get("commune_code") in (None, ward):
            return Decimal(str(c["k"]))
    return Decimal(1)


def test_frontage_parcel_on_one_road(db: Engine, models: dict) -> None:
    """Position 1 (the parcel borders segment X): area x VT1 of X x depth layers (x K)."""
    model = models["001"]
    rows = stored(db, "001")
    depths = []
    for part, exp, got in _pick(model, rows, lambda p, e: p.code == "ODT" and p.area_m2
                                and e.basis == "segment" and e.position == 1
                                and e.roads_in_front == 1):
        vt1 = _vt(model.table, exp.segment, "ODT", 1)
        depth = depth_factor(model.geoms[part.parcel_uid],
                             model.lines[[(s.commune_code, s.road_name, s.from_desc,
                                           s.to_desc)
                                          for s in model.segments].index(exp.segment)],
                             model.table.rules["depth_layer"])
        depths.append(depth)
        k = _k(model, part, "ODT", 1)
        assert got["unit_price"] == vt1 and got["position"] == 1
        assert got["factor"] in (depth, (depth * k).quantize(Decimal("0.000001")))
        assert got["value"] == (part.area_m2 * vt1 * depth * k).quantize(Decimal(1),
                                                                        ROUND_HALF_UP)
        assert got["explanation"]["segment"]["road"] == exp.segment[1]
    # most lots on a road reach beyond its first 20 m (a lot beside a crossing may not)
    assert depths and min(depths) < 1


def test_corner_parcel_with_two_frontages(db: Engine, models: dict) -> None:
    for district, pct in (("001", Decimal("1.2")), ("492", Decimal("1.15"))):
        model = models[district]
        rows = stored(db, district)
        for part, exp, got in _pick(model, rows, lambda p, e: p.code == "ODT" and p.area_m2
                                    and e.basis == "segment" and e.roads_in_front >= 2):
            vt1 = _vt(model.table, exp.segment, "ODT", 1)
            line = model.lines[[(s.commune_code, s.road_name, s.from_desc, s.to_desc)
                                for s in model.segments].index(exp.segment)]
            depth = depth_factor(model.geoms[part.parcel_uid], line,
                                 model.table.rules["depth_layer"])
            assert got["value"] == (part.area_m2 * vt1 * depth * pct
                                    * _k(model, part, "ODT", 1)).quantize(
                Decimal(1), ROUND_HALF_UP)
            rules = {a["rule"]: a for a in got["adjustments"]}
            assert Decimal(str(rules["two_frontages"]["factor"])) == pct
            assert len(rules["two_frontages"]["roads"]) >= 2


def test_parcel_behind_the_frontage(db: Engine, models: dict) -> None:
    """Positions 2-4 from the distance to the one segment in reach: area x VT of X."""
    model = models["001"]
    rows = stored(db, "001")
    for position in (2, 3, 4):
        for part, exp, got in _pick(model, rows, lambda p, e, pos=position: p.code == "ODT"
                                    and p.area_m2 and e.basis == "segment"
                                    and e.position == pos and e.candidates == 1, n=2):
            price = _vt(model.table, exp.segment, "ODT", position)
            assert (got["position"], got["unit_price"], got["factor"]) == (position, price, 1)
            assert got["value"] == (part.area_m2 * price).quantize(Decimal(1), ROUND_HALF_UP)


def test_urban_land_is_priced_by_urban_rows_only(db: Engine, models: dict) -> None:
    """Beyond every priced road, urban land takes its ward's "remaining roads" row (the
    2026 table names the 2025 wards), never the rural matrix; where the table has no row
    for it the part is unpriced and says why."""
    model = models["001"]
    rows = stored(db, "001")
    for part, exp, got in _pick(model, rows, lambda p, e: p.code == "ODT" and p.area_m2
                                and e.basis == "segment" and e.segment is None):
        ward = model.parcels[part.parcel_uid].current_commune_code
        price = model.table.remaining[(ward, "ODT")][exp.position - 1]
        assert got["explanation"]["segment"] == {
            "id": got["segment_id"], "road": "Các đường còn lại", "kind": "remaining",
            "commune": ward}
        assert got["explanation"]["position_by"] == "undrawn_position"
        assert got["value"] == (part.area_m2 * price * (exp.factor or 1)).quantize(
            Decimal(1), ROUND_HALF_UP)
    for district in DISTRICTS:
        for got in stored(db, district).values():
            if got["land_use_code"] in URBAN_TYPES:
                assert got["basis"] != "area", got
            if got["land_use_code"] in URBAN_TYPES and got["value"] is None \
                    and got["basis"] is None:
                assert got["reason_code"] == "urban_no_row", got
                assert "not priced by the rural area-class matrix" in \
                    got["explanation"]["reason"]
    # the land office's case (parcel 00001.1.1 of Phúc Xá ward, an urban lot out of every
    # priced road's reach, was priced as rural land): the sample's residential lot
    # farthest from every drawn segment
    with db.connect() as conn:
        uid = conn.execute(text("""
            SELECT p.uid FROM cadastre.parcel p
             WHERE p.district_code = '001' AND p.status = 'current' AND p.land_use = 'ODT'
             ORDER BY (SELECT min(ST_Distance(p.geom, s.geom)) FROM valuation.price_segment s
                        WHERE s.geom IS NOT NULL) DESC, p.uid LIMIT 1""")).scalar_one()
    parts = [r for (p, _), r in rows.items() if p == uid]
    assert parts and not any(r["basis"] == "area" and r["land_type"] == "ONT" for r in parts)
    for r in parts:
        if r["land_use_code"] == "ODT":
            assert r["basis"] in ("segment", "zone") or r["reason_code"] == "urban_no_row"


def test_agricultural_land_takes_its_area_class(db: Engine, models: dict) -> None:
    """Farm land in a ward keeps the area-class matrix, by the parcel's 2025 commune. The
    sample towns have little of it (gardens of mixed-use lots, a few annual-crop lots in
    Ba Đình delivered with the 2018 code BHK): the parts are looked for in every district."""
    found = 0
    for district, model in models.items():
        farm = {code for code, _ in model.table.agricultural}
        rows = stored(db, district)
        for part in model.parts:
            exp = model.expect(part)
            if part.code not in farm or not part.area_m2 or exp.basis != "area":
                continue
            got = rows[(part.parcel_uid, part.seq)]
            ward = model.parcels[part.parcel_uid].current_commune_code
            prices = model.table.agricultural[(part.code, model.table.classes[ward])]
            assert (got["basis"], got["area_class"]) == ("area", model.table.classes[ward])
            assert got["unit_price"] == prices[got["position"] - 1]
            found += 1
    assert found, "no farm land priced by its area class in the samples"


def test_coefficient_k(db: Engine, models: dict) -> None:
    """K by year, land type, commune and position: Đà Nẵng's for TMD in the 2025 ward
    20242, Hà Nội's for ODT at position 1 in ward 00004 only."""
    model = models["492"]
    rows = stored(db, "492")
    k = next(c for c in model.table.coefficients if c["land_type"] == "TMD")
    for part, exp, got in _pick(model, rows, lambda p, e: p.code == "TMD" and p.area_m2
                                and e.basis == "segment" and e.position > 1 and e.segment
                                and model.parcels[p.parcel_uid].current_commune_code
                                == k["commune_code"]):
        price = _vt(model.table, exp.segment, "TMD", exp.position)
        assert got["value"] == (part.area_m2 * price * Decimal(str(k["k"]))).quantize(
            Decimal(1), ROUND_HALF_UP)
        (rule,) = [a for a in got["adjustments"] if a["rule"] == "coefficient_k"]
        assert rule["commune"] == k["commune_code"]
    others = [r for r in rows.values() if r["land_type"] == "ODT"]
    assert others and not any("coefficient_k" in json.dumps(r["adjustments"]) for r in others)
    hanoi = models["001"]
    (k,) = hanoi.table.coefficients
    with_k = 0
    for (uid, _), got in stored(db, "001").items():
        mine = (got["land_type"] == k["land_type"] and got["position"] == k["position"]
                and hanoi.parcels[uid].current_commune_code == k["commune_code"])
        has = "coefficient_k" in json.dumps(got["adjustments"])
        assert has == mine, got
        with_k += has
    assert with_k


def test_value_zone_with_standard_parcel(db: Engine, models: dict,
                                         prices_manifest: dict) -> None:
    zone = next(e["zone"] for e in prices_manifest["deliveries"] if e.get("zone"))
    rows = stored(db, "491")
    in_zone = [r for r in rows.values() if r["basis"] == "zone"]
    assert len(in_zone) >= 3  # the 3 x 3 block's ODT parts
    for got in in_zone:
        assert got["unit_price"] == zone["vnd_per_m2"]
        assert got["explanation"]["zone"]["standard_parcel"] == zone["standard_parcel"]
        assert got["value"] == (got["area_m2"] * zone["vnd_per_m2"]).quantize(
            Decimal(1), ROUND_HALF_UP)


def test_every_part_matches_the_rules(db: Engine, models: dict) -> None:
    """Every land-use part of the valued districts, against the rules restated here."""
    for district, model in models.items():
        rows = stored(db, district)
        assert len(rows) == len(model.parts)
        for part in model.parts:
            exp, got = model.expect(part), rows[(part.parcel_uid, part.seq)]
            assert (got["basis"], got["unit_price"], got["position"], got["value"]) == \
                (exp.basis, exp.unit_price, exp.position, exp.value), (district, part)
            if exp.factor is not None and exp.value is not None:
                assert got["factor"] == exp.factor, (district, part)


def test_height_difference(db: Engine, models: dict) -> None:
    """A recorded height difference >= 1.5 m to the road: x 70% (a new run)."""
    model = models["001"]
    rows = stored(db, "001")
    (part, exp, got), = _pick(model, rows, lambda p, e: p.code == "ODT" and p.area_m2
                              and e.basis == "segment" and e.position == 3, n=1)
    with db.begin() as conn:
        conn.execute(text("INSERT INTO valuation.parcel_site (district_code, parcel_uid, "
                          "height_diff_m) VALUES ('001', :p, 1.8)"), {"p": part.parcel_uid})
    valuate(db, "001", DATE)
    after = stored(db, "001")[(part.parcel_uid, part.seq)]
    pct = Decimal(str(model.table.rules["height_difference"]["pct"])) / 100
    assert after["value"] == (part.area_m2 * exp.unit_price * pct).quantize(Decimal(1),
                                                                           ROUND_HALF_UP)
    assert after["value"] < got["value"]


# --- runs ---------------------------------------------------------------------------------
def test_runs_are_versioned_and_reproducible(db: Engine, valued: dict) -> None:
    first = valued["492"]
    again = valuate(db, "492", DATE)
    assert again.run_id != first
    a, b = stored(db, "492", first), stored(db, "492", again.run_id)
    drop = ("run_id",)
    assert {k: {c: v for c, v in r.items() if c not in drop} for k, r in a.items()} == \
        {k: {c: v for c, v in r.items() if c not in drop} for k, r in b.items()}
    with db.connect() as conn:
        runs = conn.execute(text("""
            SELECT r.run_id, r.inputs_hash, r.table_code, r.table_version, r.table_hash,
                   r.is_latest, t.version, t.content_hash
              FROM valuation.valuation_run r JOIN valuation.price_table t USING (table_id)
             WHERE r.run_id IN (:a, :b) ORDER BY r.run_id"""),
                            {"a": first, "b": again.run_id}).all()
    assert runs[0].inputs_hash == runs[1].inputs_hash
    assert [r.is_latest for r in runs] == [False, True]
    assert all((r.table_version, r.table_hash) == (r.version, r.content_hash) for r in runs)
    skipped = valuate(db, "492", DATE, if_changed=True)
    assert skipped.skipped and skipped.run_id == again.run_id


def test_summary_names_parts_without_price(valued: dict, db: Engine) -> None:
    summary = valuate(db, "491", DATE, if_changed=False)
    assert summary.parcels_valued > 0 and summary.total_value > 0
    assert summary.parts_valued + sum(summary.unpriced.values()) == summary.parts_total
    assert any(r.startswith("land-use code DGT is not priced") for r in summary.unpriced)
    lines = "\n".join(summary.lines())
    assert "parts without price" in lines and "VND" in lines
