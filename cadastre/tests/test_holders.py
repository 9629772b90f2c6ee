"""What a delivery says of a parcel's purposes and holders: the area of each purpose of a
mixed-use parcel (DienTichMucDich), the kind of its owner (LoaiChu), and the holders file
beside the parcel file (``<stem>.chu_su_dung.csv``: a couple holding jointly, a household,
an organisation and a person with shares). Every rejection is located and refuses the row
(strict: the file); a re-delivery changes nothing, changed holders end the old rights with
a transfer event; nothing of it is published.

The files are cut from the Thanh Khê sample (WGS84), each test on sample features of its
own (their ground is free), into a database of this module's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine

from cadastre import MAPPINGS
from cadastre.loader import delivery_sha256, load_parcels
from etl.fieldmap import FieldMapping
from landplatform.db import make_engine
from support import SAMPLES, create_database, data_snapshot

SAMPLE = json.loads((SAMPLES / "parcels_491_thanh_khe.geojson").read_text(encoding="utf-8"))
HEADER = "MaXa,SoHieuToBanDo,SoThuTuThua,LoaiChu,TenChu,SoGiayTo,TyLe"


@pytest.fixture(scope="module")
def db(server_url: URL) -> Iterator[Engine]:
    engine = make_engine(create_database(server_url, "lis_holders"))
    yield engine
    engine.dispose()


def features(first: int, n: int) -> list[dict]:
    """``n`` sample features from the ``first`` (0-based), named as a delivery names them,
    without owners; their sheets are 1:2000 (as the sample's sidecar says)."""
    out = []
    for f in SAMPLE["features"][first:first + n]:
        p = f["properties"]
        out.append({"type": "Feature", "geometry": f["geometry"], "properties": {
            "MaXa": p["ma_xa"], "SoHieuToBanDo": p["so_to"], "SoThuTuThua": p["so_thua"],
            "DienTich": p["dien_tich"], "KyHieuMucDichSuDung": p["muc_dich"],
            "TyLe": 2000}})
    return out


def key(feature: dict) -> tuple[str, int, int]:
    p = feature["properties"]
    return p["MaXa"], p["SoHieuToBanDo"], p["SoThuTuThua"]


def owner(feature: dict, name: str, number: str, kind: str | None = "Cá nhân") -> None:
    feature["properties"].update(TenChu=name, SoCCCD=number, LoaiChu=kind)


def write(tmp_path: Path, name: str, feats: list[dict],
          holders: list[tuple] | None = None) -> Path:
    """The parcel file, and its holders file when ``holders`` is given (else none)."""
    path = tmp_path / f"{name}.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats},
                               ensure_ascii=False), encoding="utf-8")
    beside = tmp_path / f"{name}.chu_su_dung.csv"
    beside.unlink(missing_ok=True)
    if holders is not None:
        rows = [",".join("" if v is None else str(v) for v in r) for r in holders]
        beside.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def holder(feature: dict, kind: str, name: str, number: str, share: str = "") -> tuple:
    return (*key(feature), kind, name, number, share)


def parts(db: Engine, feature: dict) -> list[tuple[str, float | None]]:
    c, s, n = key(feature)
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(text("""
            SELECT u.code, u.area_m2::float8 FROM cadastre.parcel_land_use u
              JOIN cadastre.parcel p ON p.district_code = u.district_code
                                    AND p.uid = u.parcel_uid
             WHERE p.commune_code = :c AND p.sheet_no = :s AND p.parcel_no = :n
               AND p.status = 'current'
             ORDER BY u.seq"""), {"c": c, "s": s, "n": n})]


def rights(db: Engine, feature: dict) -> set[tuple]:
    """The parcel's current rights: (name, kind, share, source key)."""
    c, s, n = key(feature)
    with db.connect() as conn:
        return {tuple(r) for r in conn.execute(text("""
            SELECT pa.full_name, pa.kind, r.share, pa.source_key
              FROM restricted.land_right r
              JOIN restricted.party pa USING (party_id)
              JOIN cadastre.parcel p ON p.district_code = r.district_code
                                    AND p.uid = r.parcel_uid
             WHERE p.commune_code = :c AND p.sheet_no = :s AND p.parcel_no = :n
               AND r.valid_to IS NULL"""), {"c": c, "s": s, "n": n})}


def transfers(db: Engine, run_id: int) -> set[int]:
    """The parcel numbers that got a transfer event from the run."""
    with db.connect() as conn:
        return set(conn.execute(text("""
            SELECT p.parcel_no FROM cadastre.parcel_event e
              JOIN cadastre.parcel p ON p.district_code = e.district_code
                                    AND p.uid = e.parcel_uid
             WHERE e.load_run_id = :r AND e.kind = 'transfer'"""), {"r": run_id}).scalars())


def located(result: object) -> list[tuple[int, str]]:
    return [(i.feature_no, i.field) for i in result.rejects]


# ------------------------------------------------------------------ per-purpose areas

def test_the_shapefile_names_of_the_new_fields_are_known() -> None:
    found, _ = FieldMapping.load("parcels", MAPPINGS).resolve(
        ["MaXa", "DienTichMu", "LoaiChu"])
    assert found == {"MaXa": "commune_code", "DienTichMu": "land_use_areas",
                     "LoaiChu": "owner_kind"}


def test_each_purpose_of_a_mixed_use_parcel_has_its_area(db: Engine, tmp_path: Path
                                                          ) -> None:
    feats = features(0, 3)
    mixed = feats[0]["properties"]
    area = mixed["DienTich"]
    odt = round(area * 0.7, 1)
    cln = round(area - odt, 1)
    mixed.update(KyHieuMucDichSuDung="ODT+CLN", DienTichMucDich=f"ODT:{odt};CLN:{cln}")
    feats[1]["properties"]["DienTichMucDich"] = ""  # single purpose: the parcel's area
    feats[2]["properties"]["KyHieuMucDichSuDung"] = "ODT+CLN"  # mixed, areas not stated
    path = write(tmp_path, "areas", feats)
    first = load_parcels(db, path)
    assert first.status == "loaded" and first.inserted == 3, first.detail_lines()
    assert parts(db, feats[0]) == [("ODT", odt), ("CLN", cln)]
    single = feats[1]["properties"]
    assert parts(db, feats[1]) == [(single["KyHieuMucDichSuDung"], single["DienTich"])]
    assert parts(db, feats[2]) == [("ODT", None), ("CLN", None)]

    snapshot = data_snapshot(db)
    again = load_parcels(db, path)
    assert (again.status, again.updated, again.unchanged) == ("loaded", 0, 3)
    assert data_snapshot(db) == snapshot

    # other areas for the parts: the parcel changed (a version kept), its parts rewritten
    mixed["DienTichMucDich"] = f"ODT:{odt - 10:.1f};CLN:{cln + 10:.1f}"
    changed = load_parcels(db, write(tmp_path, "areas", feats))
    assert (changed.status, changed.updated, changed.unchanged) == ("loaded", 1, 2), \
        changed.detail_lines()
    assert parts(db, feats[0]) == [("ODT", round(odt - 10, 1)), ("CLN", round(cln + 10, 1))]


@pytest.mark.parametrize("given, why", [
    ("CLN:{b};ODT:{a}", "the parcel's purposes are ODT+CLN, in that order"),
    ("ODT:{a};CLN:{more}", "the parts add up to"),
    ("ODT={a}", "each part is CODE:AREA"),
    ("ODT:{a};XYZ:{b}", "unknown land-use code 'XYZ'"),
    ("ODT:{a};CLN:0", "must be greater than 0"),
], ids=["order", "sum", "format", "code", "zero"])
def test_bad_areas_of_the_purposes_reject_the_row(db: Engine, tmp_path: Path, given: str,
                                                  why: str) -> None:
    feats = features(10, 2)
    p = feats[1]["properties"]
    a = round(p["DienTich"] / 2, 1)
    b = round(p["DienTich"] - a, 1)
    p.update(KyHieuMucDichSuDung="ODT+CLN",
             DienTichMucDich=given.format(a=a, b=b, more=round(b + 0.5, 1)))
    snapshot = data_snapshot(db)
    result = load_parcels(db, write(tmp_path, "bad_areas", feats))
    assert result.status == "rejected"
    assert located(result) == [(2, "land_use_areas")]
    assert why in result.rejects[0].reason
    assert data_snapshot(db) == snapshot


# ---------------------------------------------------------------------- kinds of owner

def test_the_kind_of_each_owner(db: Engine, tmp_path: Path) -> None:
    feats = features(20, 5)
    owner(feats[0], "Nguyễn Văn An", "048090000001", "Cá nhân")
    # his household, known by the head's CCCD too: a party apart from him
    owner(feats[1], "Hộ ông Nguyễn Văn An", "048090000001", "Ho gia dinh")
    owner(feats[2], "Công ty TNHH Sông Hàn", "0400000001", "TỔ CHỨC")
    owner(feats[3], "Trần Thị Bình", "048190000002", None)  # no kind stated: a person
    result = load_parcels(db, write(tmp_path, "kinds", feats))
    assert result.status == "loaded", result.detail_lines()
    assert rights(db, feats[0]) == {("Nguyễn Văn An", "individual", None,
                                     "id:048090000001")}
    assert rights(db, feats[1]) == {("Hộ ông Nguyễn Văn An", "household", None,
                                     "household:048090000001")}
    assert rights(db, feats[2]) == {("Công ty TNHH Sông Hàn", "organisation", None,
                                     "id:0400000001")}
    assert {r[1] for r in rights(db, feats[3])} == {"individual"}
    assert rights(db, feats[4]) == set()

    for kind, name, why in (("Doanh nghiệp tư nhân", "Lê Văn C", "unknown kind"),
                            ("Cá nhân", None, "without the owner's name")):
        bad = features(25, 2)
        owner(bad[1], name, None, kind)
        snapshot = data_snapshot(db)
        refused = load_parcels(db, write(tmp_path, "bad_kind", bad))
        assert refused.status == "rejected"
        assert (2, "owner_kind") in located(refused)
        assert any(why in i.reason for i in refused.rejects)
        assert data_snapshot(db) == snapshot


# ----------------------------------------------------------------------- holders file

def test_several_holders_joint_or_with_shares(db: Engine, tmp_path: Path) -> None:
    feats = features(30, 4)
    a, b, c, d = feats
    couple = [holder(a, "Cá nhân", "Lê Văn Hùng", "048090000011"),
              holder(a, "Cá nhân", "Phạm Thị Lan", "048190000012")]
    household = [holder(b, "Hộ gia đình", "Hộ ông Võ Văn Tám", "048090000013")]
    shares = [holder(c, "Tổ chức", "Công ty CP Đà Nẵng Xanh", "0401234567", "60"),
              holder(c, "Cá nhân", "Ngô Văn Minh", "048090000014", "40.0")]
    owner(a, "Lê Văn Hùng", "048090000011")  # the parcel file repeats the first holder
    owner(b, "Hộ ông Võ Văn Tám", "048090000013", "Hộ gia đình")
    owner(c, "Công ty CP Đà Nẵng Xanh", "0401234567", "Tổ chức")
    owner(d, "Đặng Thị Hoa", "048190000015")  # not in the holders file: its own owner
    path = write(tmp_path, "holders", feats, couple + household + shares)
    first = load_parcels(db, path)
    assert first.status == "loaded" and first.inserted == 4, first.detail_lines()

    def names(feature: dict) -> set[tuple]:
        return {r[:3] for r in rights(db, feature)}
    assert names(a) == {("Lê Văn Hùng", "individual", None),
                        ("Phạm Thị Lan", "individual", None)}
    assert names(b) == {("Hộ ông Võ Văn Tám", "household", None)}
    assert names(c) == {("Công ty CP Đà Nẵng Xanh", "organisation", "60.0%"),
                        ("Ngô Văn Minh", "individual", "40.0%")}
    assert names(d) == {("Đặng Thị Hoa", "individual", None)}
    assert transfers(db, first.run_id) == set()  # new parcels: no transfer

    # the same delivery again: nothing
    snapshot = data_snapshot(db)
    again = load_parcels(db, path)
    assert (again.status, again.unchanged) == ("loaded", 4)
    assert data_snapshot(db) == snapshot

    # changed holders: a spouse replaced, the shares 50/50; the old rights end
    sha = delivery_sha256(path)
    couple[1] = holder(a, "Cá nhân", "Bùi Thị Thu", "048190000016")
    shares = [s[:-1] + ("50",) for s in shares]
    path = write(tmp_path, "holders", feats, couple + household + shares)
    assert delivery_sha256(path) != sha  # a new delivery, not skipped as loaded
    changed = load_parcels(db, path)
    assert changed.status == "loaded", changed.detail_lines()
    assert names(a) == {("Lê Văn Hùng", "individual", None),
                        ("Bùi Thị Thu", "individual", None)}
    assert {r[2] for r in rights(db, c)} == {"50.0%"}
    assert transfers(db, changed.run_id) == {a["properties"]["SoThuTuThua"],
                                             c["properties"]["SoThuTuThua"]}
    with db.connect() as conn:
        ended = conn.execute(text("""
            SELECT count(*) FROM restricted.land_right r
              JOIN restricted.party pa USING (party_id)
             WHERE r.valid_to IS NOT NULL AND pa.full_name IN
                   ('Phạm Thị Lan', 'Công ty CP Đà Nẵng Xanh', 'Ngô Văn Minh')""")).scalar()
    assert ended == 3  # kept in restricted.land_right, with the time they ended

    # the parcel file alone (its owner is each parcel's first holder): nothing changes
    snapshot = data_snapshot(db)
    alone = load_parcels(db, write(tmp_path, "holders", feats))
    assert alone.status == "loaded", alone.detail_lines()
    assert data_snapshot(db) == snapshot

    # nothing of it is published
    with db.connect() as conn:
        public = json.dumps([dict(r) for r in conn.execute(text(
            "SELECT * FROM publish.parcels WHERE commune_code = :c AND sheet_no = :s "
            "AND parcel_no = :n"), dict(zip("csn", key(a), strict=True))).mappings()],
            default=str)
    assert public != "[]"
    for secret in ("Lê Văn Hùng", "Bùi Thị Thu", "048090000011", "50.0%"):
        assert secret not in public


def base_holders(x: dict, y: dict) -> list[tuple]:
    return [holder(x, "Cá nhân", "Trương Văn Tài", "048090000021"),
            holder(x, "Cá nhân", "Lý Thị Mỹ", "048190000022"),
            holder(y, "Tổ chức", "Hợp tác xã Hòa Khê", "0401112223", "100")]


@pytest.mark.parametrize("case, field, why", [
    ("not_in_file", "parcel_no", "is not in the parcel file"),
    ("unknown_kind", "kind", "unknown kind of land user"),
    ("shares", "share", "add up to 90 %, not 100"),
    ("mixed", "share", "have a share and 1 none"),
    ("duplicate", "id_number", "named twice"),
    ("document", "id_number", "tax code"),
])
def test_bad_holders_are_rejected_with_their_line(db: Engine, tmp_path: Path, case: str,
                                                  field: str, why: str) -> None:
    x, y = feats = features(40, 2)
    rows = base_holders(x, y)
    if case == "not_in_file":
        rows.append((x["properties"]["MaXa"], 1, 99999, "Cá nhân", "Vũ Văn K",
                     "048090000029", ""))
    elif case == "unknown_kind":
        rows[1] = rows[1][:3] + ("Liên doanh",) + rows[1][4:]
    elif case == "shares":
        rows[2:] = [holder(y, "Tổ chức", "Hợp tác xã Hòa Khê", "0401112223", "60"),
                    holder(y, "Cá nhân", "Đỗ Văn Lực", "048090000023", "30")]
    elif case == "mixed":
        rows[2:] = [holder(y, "Tổ chức", "Hợp tác xã Hòa Khê", "0401112223", "60"),
                    holder(y, "Cá nhân", "Đỗ Văn Lực", "048090000023", "")]
    elif case == "duplicate":
        rows[1] = holder(x, "Cá nhân", "Trương Văn Tài", "048090000021")
    elif case == "document":
        rows[2] = holder(y, "Tổ chức", "Hợp tác xã Hòa Khê", "123", "100")
    snapshot = data_snapshot(db)
    result = load_parcels(db, write(tmp_path, f"bad_{case}", feats, rows))
    assert result.status == "rejected", result.summary()
    expected_feature = {"not_in_file": 0, "shares": 2, "mixed": 2, "document": 2}.get(case, 1)
    wrong = [i for i in result.rejects if i.field == f"bad_{case}.chu_su_dung.csv!{field}"]
    assert wrong and {i.feature_no for i in wrong} == {expected_feature}, located(result)
    assert all(why in i.reason and i.reason.startswith("line ") for i in wrong), wrong
    # no name or document number is quoted back
    assert not any(i.value and ("048" in i.value or "Văn" in i.value)
                   for i in result.rejects)
    assert data_snapshot(db) == snapshot

    if case == "unknown_kind":  # quarantine: the parcel with bad holders is left out
        kept = load_parcels(db, write(tmp_path, f"bad_{case}", feats, rows),
                            quarantine=True)
        assert (kept.status, kept.inserted, kept.rejected) == ("loaded", 1, 1), \
            kept.detail_lines()
        assert rights(db, y) and not parts(db, x)


def test_a_holders_file_without_a_required_column_fails(db: Engine, tmp_path: Path) -> None:
    feats = features(45, 1)
    path = write(tmp_path, "no_doc", feats)
    path.with_name("no_doc.chu_su_dung.csv").write_text(
        "MaXa,SoHieuToBanDo,SoThuTuThua,LoaiChu,TenChu\n", encoding="utf-8")
    result = load_parcels(db, path)
    assert result.status == "failed" and "id_number" in result.message, result.summary()
