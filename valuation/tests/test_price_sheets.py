"""Price sheets as provinces write them, and what they mean for a parcel's price.

The Hà Nội sample (valuation/samplegen.py) is built like the workbook a land office found
refused: the segment in one "Đoạn đường" column, 125 urban rows a sheet grouped under the
2025 wards, roads listed in several wards, unnamed roads by cross-section width, "the
remaining roads", road-class sheets the segment rows refer to, prices stored as formulas
with their computed values. Each test reads the workbook itself (openpyxl) and checks what
the database holds or how a parcel is valued against it, in a real PostGIS.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import openpyxl
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine

from cadastre.loader import load_parcels
from landplatform.db import make_engine
from support import SAMPLES, create_database
from valuation.engine import valuate
from valuation.loader import load_prices, load_sample_prices
from valuation.rules import cross_section, split_segment

PRICES = SAMPLES / "prices"
HANOI = PRICES / "bang_gia_dat_ha_noi_2026.xlsx"
ODT_SHEET = "Đất ở đô thị"
DATE = date(2026, 6, 1)


@pytest.fixture(scope="module")
def db(server_url: URL, manifest: list[dict]) -> Iterator[Engine]:
    engine = make_engine(create_database(server_url, "lis_price_sheets"))
    for entry in manifest:
        if entry["district_code"] in ("001", "492"):
            assert load_parcels(engine, SAMPLES / entry["file"]).status == "loaded"
    messages: list[str] = []
    assert load_sample_prices(engine, PRICES, lambda m, err=False: messages.append(m)), \
        messages
    yield engine
    engine.dispose()


def odt_rows() -> list[tuple]:
    """The data rows of the Hà Nội residential sheet (below its two header rows), with
    the road name carried down over its segments and section rows left out."""
    sheet = openpyxl.load_workbook(HANOI, data_only=True)[ODT_SHEET]
    out, road = [], None
    for r, row in enumerate(sheet.iter_rows(min_row=5, values_only=True), start=5):
        if row[1] and all(v is None for v in row[2:]):
            continue
        road = row[1] or road
        out.append((r, road, *row[2:]))
    return out


def segments(db: Engine, table_code: str = "HN-2026") -> list[dict]:
    with db.connect() as conn:
        return [dict(r) for r in conn.execute(text("""
            SELECT s.* FROM valuation.price_segment s JOIN valuation.price_table t
                 USING (table_id) WHERE t.table_code = :t ORDER BY s.source_row"""),
            {"t": table_code}).mappings()]


def rates(db: Engine, segment_id: int, land_type: str) -> list[int]:
    with db.connect() as conn:
        return [int(v) for v in conn.execute(text(
            "SELECT vnd_per_m2 FROM valuation.price_rate WHERE segment_id = :s "
            "AND land_type = :l ORDER BY position"), {"s": segment_id, "l": land_type})
            .scalars()]


def by_row(db: Engine) -> dict[int, dict]:
    return {int(s["source_row"].rsplit("!", 1)[1]): s for s in segments(db)
            if s["source_row"].startswith(ODT_SHEET + "!")}


# --- reading ------------------------------------------------------------------------------
def test_every_row_is_a_segment_no_false_duplicates(db: Engine) -> None:
    """One road's segments in one column are distinct segments: 125 rows, 125 segments,
    no row rejected, though many rows share a road name (the land office's case)."""
    rows = odt_rows()
    stored = by_row(db)
    assert len(rows) >= 110 and sorted(stored) == [r[0] for r in rows]
    names = [r[1] for r in rows]
    assert len(set(names)) < len(names) * 0.6  # most roads have several segments
    with db.connect() as conn:
        rejected = conn.execute(text("""
            SELECT count(*) FROM etl.load_reject j JOIN etl.load_run r USING (run_id)
             WHERE r.kind = 'price_table' AND r.file_name LIKE '%ha_noi%'
               AND j.reason NOT LIKE '[note]%'""")).scalar()
    assert rejected == 0
    for r, road, written, *_ in rows:
        seg = stored[r]
        assert seg["road_name"] == road
        if written is None:  # unnamed roads and the remaining roads
            continue
        assert seg["segment_text"] == written
        m = re.match(r"^(?:Đoạn t|T)ừ (.+?) đến (.+)$", written)
        expect = (m.group(1), m.group(2)) if m else (None, None)
        assert written in ("Cả đường", "Toàn tuyến") or m, written
        assert (seg["from_desc"], seg["to_desc"]) == expect, written


def test_one_road_in_two_wards_is_two_segments(db: Engine) -> None:
    """Phố Đội Cấn is drawn in Ba Đình ward and listed again under Ngọc Hà ward."""
    doi_can = [s for s in segments(db) if s["road_name"] == "Phố Đội Cấn"]
    assert {s["commune_code"] for s in doi_can} == {"00004", "00008"}
    drawn = [s for s in doi_can if s["geom"] is not None]
    assert drawn and {s["commune_code"] for s in drawn} == {"00004"}


def test_section_rows_qualify_the_rows_under_them(db: Engine) -> None:
    """Each ward heading puts its rows in the 2025 ward; under "Các tuyến đường chưa có
    tên ..." the rows are unnamed roads by cross-section, then the remaining roads."""
    sheet = openpyxl.load_workbook(HANOI, data_only=True)[ODT_SHEET]
    wards = [row[1] for row in sheet.iter_rows(min_row=5, values_only=True)
             if row[0] and row[1] and all(v is None for v in row[2:])]
    assert wards[0] == "PHƯỜNG BA ĐÌNH" and len(wards) == 6
    segs = segments(db)
    cross = [s for s in segs if s["kind"] == "cross_section"]
    remaining = [s for s in segs if s["kind"] == "remaining"]
    assert len(remaining) == len(wards) and len(cross) == 5 * len(wards)
    assert {s["commune_code"] for s in remaining} == {s["commune_code"] for s in cross}
    for s in cross:
        low, high = cross_section(s["road_name"])
        assert (float(s["width_min_m"]), None if s["width_max_m"] is None
                else float(s["width_max_m"])) == (low, high)
        assert s["section"].startswith("Các tuyến đường chưa có tên")
        assert s["geom"] is None and s["district_code"] is None
    widths = sorted((float(s["width_min_m"]), s["width_max_m"]) for s in cross
                    if s["commune_code"] == "00004")
    assert widths[0] == (0.0, Decimal("5.50")) and widths[-1] == (25.0, None)


def test_road_classes_and_stored_formula_values(db: Engine) -> None:
    """A row that states its class and no price takes the class's prices from the
    road-class sheet; a formula's stored value is the price (=VLOOKUP, =ROUND(...))."""
    book = openpyxl.load_workbook(HANOI, data_only=True)
    formulas = openpyxl.load_workbook(HANOI)[ODT_SHEET]
    classes = {r[1]: list(r[2:6]) for r in book["Giá theo loại đường ODT"].iter_rows(
        min_row=5, values_only=True)}
    stored = by_row(db)
    blank = vlookup = 0
    for r, _road, _written, road_class, *prices in odt_rows():
        got = rates(db, stored[r]["segment_id"], "ODT")
        cell = formulas.cell(r, 5).value
        if prices[0] is None:
            assert got == classes[road_class], r
            blank += 1
        elif isinstance(cell, str) and cell.startswith("=VLOOKUP"):
            assert got == prices[:4] == classes[road_class], r
            vlookup += 1
    assert blank > 10 and vlookup > 10
    tmd = openpyxl.load_workbook(HANOI)["Đất TMDV đô thị"]
    row = next(r for r, _, _, _, *p in odt_rows() if p[0] is not None)
    assert tmd.cell(row, 5).value.startswith("=ROUND(")
    odt = rates(db, stored[row]["segment_id"], "ODT")
    assert rates(db, stored[row]["segment_id"], "TMD") == [
        int((Decimal(p) * Decimal("0.8") / 1000).quantize(Decimal(1), ROUND_HALF_UP)) * 1000
        for p in odt]


@pytest.mark.parametrize(("text", "expected"), [
    ("Từ đường Trần Phú đến đường Lê Lợi", ("đường Trần Phú", "đường Lê Lợi")),
    ("Đoạn từ Cầu Rồng đến hết đường", ("Cầu Rồng", "hết đường")),
    ("Trần Phú - Lê Lợi", ("Trần Phú", "Lê Lợi")),
    ("Cả đường", (None, None)), ("Toàn tuyến", (None, None)), ("Trọn đường", (None, None)),
    ("Đoạn còn lại", ("Đoạn còn lại", None)),
])
def test_one_column_segment_wordings(text: str, expected: tuple) -> None:
    assert split_segment(text) == expected


# --- the sidecar: headings and roles are the user's, never the package's -------------------
def _copy(tmp: Path, edit) -> Path:  # noqa: ANN001 - a function of the sidecar dict
    for part in PRICES.glob("bang_gia_dat_ha_noi_2026.*"):
        shutil.copy(part, tmp / part.name)
    side = tmp / "bang_gia_dat_ha_noi_2026.prices.yaml"
    doc = yaml.safe_load(side.read_text(encoding="utf-8"))
    edit(doc)
    side.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return tmp / HANOI.name


@pytest.mark.parametrize(("case", "edit", "message"), [
    ("unknown column name", lambda d: d.update(columns={"segmnt": ["Đoạn đường (từ ...)"]}),
     "unknown column 'segmnt' (known: stt, road_name"),
    ("heading not text", lambda d: d.update(columns={"segment": [3]}),
     "columns.segment: headings must be a non-empty list of text"),
    ("unknown sheet key", lambda d: d["sheets"][0].update(colums={}),
     "sheets[1]: unknown key(s) colums"),
    ("unknown role", lambda d: d.update(roles={"segmens": ["road_name"]}),
     "roles: unknown role 'segmens'"),
    ("unknown rule key", lambda d: d["rules"]["position_width"].update(fallbak="distance"),
     "rules.position_width: a mapping of alley, fallback, undrawn_position"),
    ("unknown K key", lambda d: d["coefficients"][0].update(ward="00004"),
     "coefficients[1]: unknown key(s) ward"),
])
def test_sidecar_mistakes_are_clear_errors(db: Engine, tmp_path: Path, case: str, edit,  # noqa: ANN001
                                           message: str) -> None:
    before = segments(db)
    result = load_prices(db, _copy(tmp_path, edit))
    assert result.status == "failed" and message in result.message, result.message
    assert segments(db) == before


def test_untaught_heading_gives_the_reported_duplicates(db: Engine, tmp_path: Path) -> None:
    """Without the sidecar teaching its "Đoạn đường (từ ... đến ...)" heading, the column
    is not read and every road's segments collide: what the land office saw."""
    before = segments(db)
    result = load_prices(db, _copy(tmp_path, lambda d: d.pop("columns")))
    assert result.status == "rejected"
    duplicates = {i.feature_no for i in result.rejects if "duplicate segment" in i.reason}
    # every row of a road listed with several segments in its ward
    sheet = openpyxl.load_workbook(HANOI, data_only=True)[ODT_SHEET]
    seen: dict[tuple, list[int]] = {}
    ward = road = None
    for r, row in enumerate(sheet.iter_rows(min_row=5, values_only=True), start=5):
        if row[1] and all(v is None for v in row[2:]):
            ward = row[1] if row[1].startswith("PHƯỜNG") else ward
            continue
        road = row[1] or road
        seen.setdefault((ward, road), []).append(r)
    assert duplicates == {r for rows in seen.values() if len(rows) > 1 for r in rows}
    assert len(duplicates) > 60
    assert segments(db) == before


def test_sidecar_heading_per_sheet_and_replacing(db: Engine, tmp_path: Path) -> None:
    """The heading taught for one sheet only, and ``only:`` replacing the built-in
    headings of a column: the same table loads, unchanged."""
    def per_sheet(doc: dict) -> None:
        headings = doc.pop("columns")
        for spec in doc["sheets"]:
            if spec["role"] == "segments":
                spec["columns"] = {"segment": {"only": headings["segment"]}}
    result = load_prices(db, _copy(tmp_path, per_sheet))
    assert result.status == "loaded", result.detail_lines()
    assert result.inserted == result.updated == 0 and not result.table_changed


# --- valuation -------------------------------------------------------------------------------
def _site(db: Engine, uid: int, width: float | None) -> None:
    with db.begin() as conn:
        conn.execute(text("""
            INSERT INTO valuation.parcel_site (district_code, parcel_uid, alley_width_m)
            VALUES ('001', :u, :w) ON CONFLICT (district_code, parcel_uid)
            DO UPDATE SET alley_width_m = EXCLUDED.alley_width_m"""), {"u": uid, "w": width})


def _part(db: Engine, condition: str, priced: bool = True) -> dict:
    with db.connect() as conn:
        return dict(conn.execute(text(f"""
            SELECT v.*, p.current_commune_code FROM valuation.parcel_value v
              JOIN valuation.valuation_run r USING (run_id)
              JOIN cadastre.parcel p ON p.uid = v.parcel_uid
             WHERE r.is_latest AND v.district_code = '001' AND v.land_use_code = 'ODT'
               AND (v.area_m2 IS NOT NULL OR NOT :priced) AND {condition}
             ORDER BY v.parcel_uid LIMIT 1"""), {"priced": priced}).mappings().one())


def _now(db: Engine, uid: int) -> dict:
    valuate(db, "001", DATE)
    return _part(db, f"v.parcel_uid = {int(uid)}")


def test_positions_by_alley_width(db: Engine) -> None:
    """Behind the frontage the recorded alley width sets the position (>= 3.5 m VT2,
    2-3.5 m VT3, < 2 m VT4: the sidecar's rule); without one, the distance bands."""
    valuate(db, "001", DATE)
    part = _part(db, "v.position = 3 AND v.explanation->>'position_by' = 'distance'")
    uid = part["parcel_uid"]
    for width, position in ((4.0, 2), (2.5, 3), (1.5, 4)):
        _site(db, uid, width)
        got = _now(db, uid)
        vt = rates(db, got["segment_id"], "ODT")
        assert (got["position"], got["unit_price"], got["explanation"]["position_by"],
                got["explanation"]["alley_width_m"]) == (position, vt[position - 1],
                                                         "alley_width", width), width
        # the road the alley leads to: the nearest priced segment
        assert Decimal(str(got["distance_m"])) <= part["distance_m"]
    _site(db, uid, None)
    assert _now(db, uid)["position"] == 3


def test_unnamed_road_by_cross_section(db: Engine) -> None:
    """Beyond every drawn road, in a ward with rows for unnamed roads: the recorded width
    of the road the parcel is on picks the cross-section row, at its VT1."""
    valuate(db, "001", DATE)
    part = _part(db, "v.explanation->'segment'->>'kind' = 'remaining' "
                     "AND p.current_commune_code = '00004'")
    uid = part["parcel_uid"]
    _site(db, uid, 12.0)
    got = _now(db, uid)
    seg = got["explanation"]["segment"]
    assert (seg["kind"], float(seg["width_min_m"]), float(seg["width_max_m"])) == \
        ("cross_section", 10.5, 15.0)
    assert got["position"] == 1 and got["explanation"]["position_by"] == "road_width"
    assert got["unit_price"] == rates(db, got["segment_id"], "ODT")[0]
    _site(db, uid, None)
    assert _now(db, uid)["explanation"]["segment"]["kind"] == "remaining"


def test_unpriced_urban_land_says_why_in_the_published_values(db: Engine) -> None:
    valuate(db, "001", DATE)
    with db.connect() as conn:
        reasons = dict(conn.execute(text("""
            SELECT unpriced_reason, count(*) FROM publish.parcel_values
             WHERE district_code = '001' AND NOT fully_valued GROUP BY 1""")).all())
        rural = conn.execute(text("""
            SELECT count(*) FROM valuation.parcel_value v JOIN valuation.valuation_run r
                 USING (run_id)
             WHERE r.is_latest AND v.land_use_code = 'ODT' AND v.basis = 'area'""")).scalar()
    assert reasons.get("urban_no_row") and reasons.get("land_use_not_priced")
    assert rural == 0


def test_position_fallback_unpriced(db: Engine, tmp_path: Path) -> None:
    """A province that states no distance fallback: without an alley width, a parcel
    behind the frontage is unpriced, and says so."""
    def unpriced(doc: dict) -> None:
        doc["table_code"] = "HN-2026-W"
        doc["effective_from"] = "2026-05-01"
        doc["rules"]["position_width"]["fallback"] = "unpriced"
    result = load_prices(db, _copy(tmp_path, unpriced),
                         segments=PRICES / "doan_duong_ha_noi.gpkg")
    assert result.status == "loaded", result.detail_lines()
    run = valuate(db, "001", DATE)
    assert run.table_code == "HN-2026-W"
    part = _part(db, "v.reason_code = 'position_unknown'", priced=False)
    assert "no alley width is recorded" in part["explanation"]["reason"]
    with db.begin() as conn:  # the sample table is the one in force again
        conn.execute(text("UPDATE valuation.price_table SET effective_to = '2026-05-31' "
                          "WHERE table_code = 'HN-2026-W'"))


def test_table_keyed_by_2025_communes_without_district(db: Engine, tmp_path: Path,
                                                       manifest: list[dict]) -> None:
    """A 2027 table that names only the 2025 wards (no district anywhere): its rows price
    the parcels whose 2025 commune is recorded, whichever old district they lie in, and K
    by commune applies. The sample towns of Hải Châu (492) and Thanh Khê (491) went wholly
    into Phường Hải Châu (20242) and Phường Thanh Khê (20209)."""
    path = tmp_path / "bang_gia_2027.csv"
    path.write_text(
        "BẢNG GIÁ ĐẤT Ở TẠI ĐÔ THỊ 2027\n"
        "STT,Tên đường,Đoạn đường,VT1,VT2,VT3,VT4\n"
        "I,PHƯỜNG HẢI CHÂU,,,,,\n"
        "1,Các đường còn lại,,30.000.000,15.000.000,12.000.000,9.000.000\n"
        "II,PHƯỜNG THANH KHÊ,,,,,\n"
        "2,Các đường còn lại,,20.000.000,10.000.000,8.000.000,6.000.000\n",
        encoding="utf-8")
    (tmp_path / "bang_gia_2027.prices.yaml").write_text(yaml.safe_dump({
        "table_code": "DN-2027", "province_code": "48", "instrument": "QĐ mẫu 2027",
        "effective_from": "2027-01-01",
        "sheets": [{"role": "segments", "land_type": "ODT", "positions": 4}],
        "rules": {"position_width": {"alley": [{"position": 2, "min_width_m": 0}],
                                     "undrawn_position": 1}},
        "coefficients": [{"year": 2027, "land_type": "ODT", "commune_code": "20209",
                          "k": 1.2}]}, allow_unicode=True), encoding="utf-8")
    (thanh_khe,) = [e for e in manifest if e["district_code"] == "491"]
    assert load_parcels(db, SAMPLES / thanh_khe["file"]).status == "loaded"
    result = load_prices(db, path)
    assert result.status == "loaded", result.detail_lines()
    segs = segments(db, "DN-2027")
    assert {(s["commune_code"], s["kind"], s["district_code"]) for s in segs} == \
        {("20242", "remaining", None), ("20209", "remaining", None)}
    runs = [valuate(db, district, date(2027, 6, 1)) for district in ("492", "491")]
    assert {run.table_code for run in runs} == {"DN-2027"}
    with db.connect() as conn:
        rows = conn.execute(text("""
            SELECT p.current_commune_code AS ward, v.unit_price, v.factor, v.value, v.area_m2
              FROM valuation.parcel_value v JOIN valuation.valuation_run r USING (run_id)
              JOIN cadastre.parcel p ON p.uid = v.parcel_uid
             WHERE v.run_id = ANY(:runs) AND v.land_use_code = 'ODT' AND v.basis = 'segment'
        """), {"runs": [run.run_id for run in runs]}).all()
    assert {r.ward for r in rows} == {"20242", "20209"}
    for r in rows:
        price, k = (30_000_000, Decimal(1)) if r.ward == "20242" else (20_000_000,
                                                                       Decimal("1.2"))
        assert (int(r.unit_price), r.factor) == (price, k)
        if r.area_m2 is not None:
            assert r.value == (r.area_m2 * price * k).quantize(Decimal(1), ROUND_HALF_UP)


# --- recorded alley widths, delivered --------------------------------------------------------
def test_parcel_sites_load_and_set_positions(db: Engine) -> None:
    """The samples' alley widths (a CSV by national parcel key): loaded once, re-loading
    changes nothing, and the parcels take the positions their widths give."""
    import csv
    import json

    from valuation.sites import load_parcel_sites

    manifest = json.loads((PRICES / "manifest.json").read_text(encoding="utf-8"))
    path = PRICES / manifest["sites"]["file"]
    first = load_parcel_sites(db, path)  # earlier tests here recorded a few parcels
    assert first["inserted"] + first["updated"] == manifest["sites"]["parcels"]
    assert first["inserted"] > 0
    assert load_parcel_sites(db, path) == {"inserted": 0, "updated": 0,
                                           "unchanged": manifest["sites"]["parcels"]}
    valuate(db, "001", DATE)
    def width_position(width: float) -> int:  # the sample tables' rule (position_width)
        return 2 if width >= 3.5 else 3 if width >= 2 else 4

    with path.open(encoding="utf-8") as fh:
        sites = list(csv.DictReader(fh))
    checked = {"alley": 0, "cross": 0}
    with db.connect() as conn:  # every residential value of the district, by parcel key
        values = {(r["commune_code"], r["sheet_no"], r["parcel_no"]): r
                  for r in conn.execute(text("""
            SELECT DISTINCT ON (p.uid) v.*, p.commune_code, p.sheet_no, p.parcel_no
              FROM valuation.parcel_value v
              JOIN valuation.valuation_run r USING (run_id)
              JOIN cadastre.parcel p ON p.district_code = v.district_code
                                    AND p.uid = v.parcel_uid
             WHERE r.is_latest AND v.district_code = '001' AND v.land_use_code = 'ODT'
               AND v.basis = 'segment'
             ORDER BY p.uid, v.seq""")).mappings()}
    for site in sites:
        width = float(site["BeRongNgo"].replace(",", "."))
        got = values.get((site["MaXa"], int(site["SoHieuToBanDo"]),
                          int(site["SoThuTuThua"])))
        if got is None:  # not residential, or in Đà Nẵng (valued here by another table)
            continue
        seg = got["explanation"]["segment"]
        if got["explanation"]["position_by"] == "frontage":  # on a road: VT1 always
            assert got["position"] == 1
        elif site["GhiChu"].startswith("ngõ") and seg["kind"] != "cross_section":
            assert (got["position"], got["explanation"]["position_by"]) == \
                (width_position(width), "alley_width"), site
            checked["alley"] += 1
        else:  # an unnamed road, or an alley beyond every drawn road's reach
            assert seg["kind"] == "cross_section" and got["position"] == 1, site
            high = seg.get("width_max_m")
            assert seg["width_min_m"] <= width and (high is None or width < high), site
            checked["cross"] += 1
    assert checked["alley"] >= 3 and checked["cross"] >= 1, checked


def test_parcel_sites_bad_file_is_refused_whole(db: Engine, tmp_path: Path) -> None:
    from valuation.sites import SitesError, load_parcel_sites

    path = tmp_path / "sites.csv"
    path.write_text("Mã xã,Tờ bản đồ,Số thửa,Bề rộng ngõ\n"
                    "00001,1,1,4\n"
                    "00001,1,1,3\n"
                    "00001,1,99999,2\n"
                    "00001,1,2,350\n"
                    "00001,1,3,rộng\n", encoding="utf-8")
    with db.connect() as conn:
        before = conn.execute(text("SELECT count(*), md5(string_agg(t::text, '|' ORDER BY "
                                   "t::text)) FROM valuation.parcel_site t")).one()
    with pytest.raises(SitesError) as err:
        load_parcel_sites(db, path)
    problems = "\n".join(err.value.problems)
    assert "line 3: parcel 00001.1.1 is given twice (also line 2)" in problems
    assert "line 5: alley width 350 m is outside 0-60 m" in problems
    assert "line 6: alley width 'rộng' is not a number" in problems
    path.write_text("MaXa,SoHieuToBanDo,SoThuTuThua,BeRongNgo\n00001,1,99999,2\n",
                    encoding="utf-8")
    with pytest.raises(SitesError, match="line 2: no current parcel 00001.1.99999"):
        load_parcel_sites(db, path)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*), md5(string_agg(t::text, '|' ORDER BY "
                                 "t::text)) FROM valuation.parcel_site t")).one() == before
