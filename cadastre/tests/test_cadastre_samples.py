"""The synthetic sample generator: deterministic, readable, topologically clean files.

No database: the loaders' and the API's tests build on these files, so their guarantees
(exact tiling, unique keys, stated areas within the 1:500 sheets' permissible error, lots
of 30-300 m², holders of every kind in the shared holders format) are checked here.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import CRS, Transformer

from cadastre import samplegen

EXPECTED_FILES = {
    "001": ("parcels_001_ba_dinh.shp", "ESRI Shapefile", 5897, "national"),
    "003": ("parcels_003_tay_ho.gpkg", "GPKG", 4326, "vietnamese"),
    "492": ("parcels_492_hai_chau.shp", "ESRI Shapefile", 5899, "national"),
    "491": ("parcels_491_thanh_khe.geojson", "GeoJSON", 4326, "snake_case"),
}
CURRENT_CODES = set(samplegen.NEW_CODES)
RESIDENTIAL = {"ODT", "ODT+CLN", "ODT+TMD"}
HOLDER_KINDS = {samplegen.INDIVIDUAL, samplegen.HOUSEHOLD, samplegen.ORGANISATION}


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("samples")
    return out, samplegen.generate_samples(out)


def read_canonical(path: Path, entry: dict) -> pd.DataFrame:
    """Read a sample back with canonical (national) column names."""
    df = pyogrio.read_dataframe(path, layer=entry["layer"])
    return df.rename(columns={v: k for k, v in entry["fields"].items()})


def tm3_geometries(df: pd.DataFrame, entry: dict) -> np.ndarray:
    """Geometries in the province's TM-3 CRS (metres), whatever CRS the file uses."""
    geoms = np.asarray(df.geometry.values, dtype=object)
    if entry["epsg"] == entry["source_epsg"]:
        return geoms
    tr = Transformer.from_crs(entry["epsg"], entry["source_epsg"], always_xy=True)
    return shapely.transform(
        geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def test_manifest_describes_four_districts(samples: tuple[Path, list[dict]]) -> None:
    out, manifest = samples
    assert [m["district_code"] for m in manifest] == ["001", "003", "492", "491"]
    for m in manifest:
        file, fmt, epsg, convention = EXPECTED_FILES[m["district_code"]]
        assert (m["file"], m["format"], m["epsg"], m["field_convention"]) == (
            file, fmt, epsg, convention)
        assert m["layer"] == ("thua_dat" if fmt == "GPKG" else None)
        assert 4000 <= m["feature_count"] <= 9000
        # most lots have a certificate; streets, water and parks have no holder
        assert 0.8 <= m["owner_count"] / m["feature_count"] <= 0.95
        assert m["holder_count"] > m["owner_count"]  # couples and co-holders
        assert m["scale"] == 500 and "scale: 500" in (out / m["sidecar"]).read_text()
        assert (out / m["file"]).exists() and (out / m["holders"]).exists()
        assert m["holders"] == Path(m["file"]).stem + ".chu_su_dung.csv"
        assert 3 <= len(m["communes"]) <= 7
        assert m["lot_area_m2"]["min"] >= 30 and m["lot_area_m2"]["max"] <= 300
    assert 20_000 <= sum(m["feature_count"] for m in manifest) <= 30_000
    assert (out / "manifest.json").exists() and (out / "README.md").exists()
    for sidecar in (".prj", ".cpg", ".dbf", ".shx"):
        assert (out / f"parcels_001_ba_dinh{sidecar}").exists()
    assert (out / "parcels_001_ba_dinh.cpg").read_text().strip() == "UTF-8"
    total = sum(p.stat().st_size for p in out.iterdir())
    assert total < 16_000_000


def test_each_district_is_a_few_real_wards_inside_its_extent(
        samples: tuple[Path, list[dict]]) -> None:
    out, manifest = samples
    districts = samplegen.load_districts()
    for m in manifest:
        district = districts[m["district_code"]]
        assert set(m["communes"]) < set(district.communes)  # a part, not the whole
        df = read_canonical(out / m["file"], m)
        geoms = tm3_geometries(df, m)
        lon0, lat0, lon1, lat1 = district.bbox
        wgs = Transformer.from_crs(m["source_epsg"], 4326, always_xy=True)
        x0, y0, x1, y1 = shapely.total_bounds(geoms)
        (a, c), (b, d) = wgs.transform([x0, x1], [y0, y1])
        assert lon0 <= a < c <= lon1 and lat0 <= b < d <= lat1, m["file"]


def test_generation_is_deterministic(samples: tuple[Path, list[dict]],
                                     tmp_path: Path) -> None:
    out, manifest = samples
    again = samplegen.generate_samples(tmp_path)
    assert again == manifest
    for m in manifest:
        a = pyogrio.read_dataframe(out / m["file"], layer=m["layer"])
        b = pyogrio.read_dataframe(tmp_path / m["file"], layer=m["layer"])
        pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
        assert shapely.equals_exact(a.geometry.values, b.geometry.values, 0).all()
        assert (out / m["holders"]).read_bytes() == (tmp_path / m["holders"]).read_bytes()
    for name in ("sheet_crosswalk.csv", "sheet_crosswalk.md"):
        assert (out / name).read_bytes() == (tmp_path / name).read_bytes()
    other = samplegen.generate_samples(tmp_path / "other_seed", seed=7)
    assert other[0]["total_stated_area_m2"] != manifest[0]["total_stated_area_m2"]


def test_files_read_back_as_the_manifest_says(samples: tuple[Path, list[dict]]) -> None:
    out, manifest = samples
    for m in manifest:
        info = pyogrio.read_info(out / m["file"], layer=m["layer"])
        assert info["driver"] == m["format"]
        assert info["features"] == m["feature_count"]
        assert CRS.from_user_input(info["crs"]).to_epsg() == m["epsg"]
        assert list(info["fields"]) == list(m["fields"].values())
        assert info["geometry_type"] == "Polygon"
        expected = samplegen.output_field_names(m["field_convention"], m["format"],
                                                samplegen.SAMPLE_FIELDS)
        assert m["fields"] == expected
        df = read_canonical(out / m["file"], m)
        assert df["DienTich"].sum() == pytest.approx(m["total_stated_area_m2"], abs=0.5)
        assert df["TenChu"].notna().sum() == m["owner_count"]


def test_parcels_tile_the_district_without_overlaps(samples: tuple[Path, list[dict]]) -> None:
    out, manifest = samples
    for m in manifest:
        df = read_canonical(out / m["file"], m)
        geoms = tm3_geometries(df, m)
        assert shapely.is_valid(geoms).all()
        areas = shapely.area(geoms)
        union = shapely.union_all(geoms)
        # Shared vertices: the union is one hole-free polygon and the areas add up.
        assert union.geom_type == "Polygon" and len(union.interiors) == 0, m["file"]
        assert abs(areas.sum() - union.area) <= 1e-6 * union.area, m["file"]
        tree = shapely.STRtree(geoms)
        sample = np.random.default_rng(0).choice(len(geoms), 200, replace=False)
        left, right = tree.query(geoms[sample], predicate="intersects")
        pairs = sample[left] != right
        overlap = shapely.area(shapely.intersection(geoms[sample[left[pairs]]],
                                                    geoms[right[pairs]]))
        assert overlap.max() < 1e-6, m["file"]
        if m["format"] in ("GPKG", "GeoJSON"):  # OGC / RFC 7946 ring orientation
            raw = np.asarray(df.geometry.values, dtype=object)
            assert shapely.is_ccw(shapely.get_exterior_ring(raw)).all(), m["file"]


def test_keys_areas_and_attributes(samples: tuple[Path, list[dict]]) -> None:
    out, manifest = samples
    for m in manifest:
        df = read_canonical(out / m["file"], m)
        keys = df[["MaXa", "SoHieuToBanDo", "SoThuTuThua"]]
        assert not keys.duplicated().any(), m["file"]
        assert sorted(df["MaXa"].unique()) == m["communes"]
        # Parcel numbers run 1..M within each (commune, sheet); 1:500 sheets hold hundreds.
        for _, numbers in df.groupby(["MaXa", "SoHieuToBanDo"])["SoThuTuThua"]:
            assert sorted(numbers) == list(range(1, len(numbers) + 1))
        computed = shapely.area(tm3_geometries(df, m))
        allowed = 0.0004 * m["scale"] * np.sqrt(computed)  # ΔP at the sheets' scale
        assert (np.abs(df["DienTich"] - computed) <= allowed).all(), m["file"]
        assert (df["DienTich"] == df["DienTich"].round(1)).all()

        use = df["KyHieuMucDichSuDung"]
        codes = set(use)
        if m["district_code"] == "001":
            share = (use == "BHK").mean()
            assert 0.003 <= share <= 0.02 and share * len(df) == m["legacy_code_count"]
            assert codes <= CURRENT_CODES | {"BHK"}
        else:
            assert codes <= CURRENT_CODES
        assert {"DGT", "DGD", "TSC"} <= codes and codes & {"MNC", "SON"}, m["file"]
        homes = use.isin(RESIDENTIAL)
        assert 0.7 <= (use == "ODT").mean() <= 0.9
        # homes: lots of 30-300 m², and a few villa lots (ODT, 420-800 m²) of one holder
        home = computed[homes.to_numpy()]
        assert home.min() >= 30 and 0.97 <= np.mean(home <= 300) < 1
        assert home.max() <= 1000 and m["kinds"]["villa"] >= 3

        # areas per purpose: "ODT:120.5;CLN:45.2", in the code's order, adding up
        mixed = use.str.contains("+", regex=False)
        assert mixed.sum() > 100 and df.loc[~mixed, "DienTichMucDich"].isna().all()
        for code, parts, area in df.loc[mixed, ["KyHieuMucDichSuDung", "DienTichMucDich",
                                                "DienTich"]].itertuples(index=False):
            pairs = [p.split(":") for p in parts.split(";")]
            assert [c for c, _ in pairs] == code.split("+")
            assert abs(sum(float(a) for _, a in pairs) - area) <= 0.1 * len(pairs)

        owned = df["TenChu"].notna()
        for col in ("SoCCCD", "SoGCN", "NgayCapGCN", "LoaiChu"):
            assert (df[col].notna() == owned).all(), (m["file"], col)
        assert set(df.loc[owned, "LoaiChu"]) == HOLDER_KINDS
        people = owned & (df["LoaiChu"] != samplegen.ORGANISATION)
        cccd = rf"0{m['province_code']}[0-3]\d{{8}}"
        assert df.loc[people, "SoCCCD"].str.fullmatch(cccd).all()
        tax = rf"{samplegen.TAX_PREFIX[m['province_code']]}\d{{8}}"
        assert df.loc[owned & ~people, "SoCCCD"].str.fullmatch(tax).all()
        assert df.loc[owned, "SoGCN"].str.fullmatch(r"[A-Z]{2} \d{6}").all()
        assert not df.loc[owned, "SoGCN"].duplicated().any()
        single = owned & (df["LoaiChu"] == samplegen.INDIVIDUAL)
        assert df.loc[single, "TenChu"].str.split().map(len).eq(3).all()
        household = owned & (df["LoaiChu"] == samplegen.HOUSEHOLD)
        assert df.loc[household, "TenChu"].str.fullmatch(r"Hộ (ông|bà) \S+ \S+ \S+").all()
        assert (df.loc[use.isin(["TSC", "DGD"]), "LoaiChu"] == samplegen.ORGANISATION).all()
        assert not df.loc[owned, "KyHieuMucDichSuDung"].isin(["DGT", "MNC", "SON"]).any()
        years = pd.to_datetime(df.loc[owned, "NgayCapGCN"]).dt.year
        assert years.between(2005, 2024).all()


def test_holders_file_names_every_holder(samples: tuple[Path, list[dict]]) -> None:
    """The shared format: one row per holder; the parcel file repeats the first; a
    married couple is two Cá nhân rows without shares; shares, when given, add up to
    100; every holder kind occurs."""
    out, manifest = samples
    documents: list[str] = []
    for m in manifest:
        df = read_canonical(out / m["file"], m)
        parcels = {(r.MaXa, int(r.SoHieuToBanDo), int(r.SoThuTuThua)): r
                   for r in df.itertuples(index=False)}
        with (out / m["holders"]).open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            assert tuple(reader.fieldnames or ()) == samplegen.HOLDER_FIELDS
            rows = list(reader)
        assert len(rows) == m["holder_count"]
        documents += [r["SoGiayTo"] for r in rows]
        by_parcel: dict[tuple, list[dict]] = defaultdict(list)
        for row in rows:
            by_parcel[(row["MaXa"], int(row["SoHieuToBanDo"]),
                       int(row["SoThuTuThua"]))].append(row)
        owned = {k for k, r in parcels.items() if isinstance(r.TenChu, str)}
        assert set(by_parcel) == owned, m["file"]
        shapes = defaultdict(int)
        for key, holders in by_parcel.items():
            first, parcel = holders[0], parcels[key]
            assert (first["LoaiChu"], first["TenChu"], first["SoGiayTo"]) == (
                parcel.LoaiChu, parcel.TenChu, parcel.SoCCCD), key
            assert {h["LoaiChu"] for h in holders} <= HOLDER_KINDS
            shares = [h["TyLe"] for h in holders]
            if any(shares):
                assert all(shares) and abs(sum(float(x) for x in shares) - 100) < 1e-9
                assert all(x == f"{float(x):.1f}" for x in shares)
                shapes["shares"] += 1
            elif len(holders) == 2:
                assert [h["LoaiChu"] for h in holders] == [samplegen.INDIVIDUAL] * 2
                shapes["couple"] += 1
            else:
                assert len(holders) == 1
                shapes[holders[0]["LoaiChu"]] += 1
        assert min(shapes[k] for k in ("shares", "couple", *HOLDER_KINDS)) >= 10, shapes
    # a party is keyed by its document: no two sample holders share one
    assert len(set(documents)) == len(documents)


def test_sheet_crosswalk_renumbers_the_wholly_merged_wards(
        samples: tuple[Path, list[dict]]) -> None:
    """Every sheet of an old ward that went wholly into one 2025 ward, and no other, gets
    a new number there; a new ward's numbers are 1..N, once each."""
    out, manifest = samples
    from cadastre.town import crosswalk_targets

    targets = crosswalk_targets()
    sheets = set()
    for m in manifest:
        df = read_canonical(out / m["file"], m)
        sheets |= {(c, int(s)) for c, s in df[["MaXa", "SoHieuToBanDo"]].drop_duplicates()
                   .itertuples(index=False)}
    with (out / "sheet_crosswalk.csv").open(encoding="utf-8", newline="") as f:
        rows = [(r["old_commune_code"], int(r["old_sheet_no"]), r["new_commune_code"],
                 int(r["new_sheet_no"])) for r in csv.DictReader(f)]
    whole = {(c, s) for c, s in sheets if len(targets[c]) == 1}
    assert {(o, s) for o, s, _, _ in rows} == whole
    assert all(targets[o] == [n] for o, _, n, _ in rows)
    numbers: dict[str, list[int]] = defaultdict(list)
    for _, _, new, sheet in rows:
        numbers[new].append(sheet)
    assert all(sorted(v) == list(range(1, len(v) + 1)) for v in numbers.values())
    # an old ward's own number and another old ward's new number name different sheets
    assert any((n, t) in sheets and (n, t) != (o, s) for o, s, n, t in rows)


def test_scale_mode_writes_exactly_n_unique_parcels(tmp_path: Path) -> None:
    path = samplegen.generate_scale(tmp_path, 5000)
    assert path.name == "parcels_scale_5000.gpkg"
    info = pyogrio.read_info(path, layer="thua_dat")
    assert info["features"] == 5000
    assert CRS.from_user_input(info["crs"]).to_epsg() == 4326
    assert list(info["fields"]) == list(samplegen.CANONICAL_FIELDS)
    df = pyogrio.read_dataframe(path, layer="thua_dat")
    assert not df[["MaXa", "SoHieuToBanDo", "SoThuTuThua"]].duplicated().any()
    assert shapely.is_valid(np.asarray(df.geometry.values)).all()
    assert len(samplegen.load_districts()) == 37  # Hoàng Sa (498) has no communes
    # Chunked writing gives the same features as one chunk.
    district = samplegen.load_districts()["001"]
    grid = samplegen.plan_grid(district, 500, exact=True)
    whole = list(samplegen.iter_parcel_chunks(district, grid, 1, 4326, chunk_size=10**6))
    parts = list(samplegen.iter_parcel_chunks(district, grid, 1, 4326, chunk_size=60))
    assert len(whole) == 1 and len(parts) > 1
    joined = np.concatenate([g for g, _ in parts])
    assert len(joined) == 500
    assert shapely.equals_exact(whole[0][0], joined, 0).all()
    for name in samplegen.CANONICAL_FIELDS:
        a, b = whole[0][1][name], np.concatenate([d[name] for _, d in parts])
        assert pd.Series(a).equals(pd.Series(b)), name


def test_main_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert samplegen.main(["--out", str(tmp_path), "--scale", "100", "--seed", "3"]) == 0
    assert (tmp_path / "parcels_scale_100.gpkg").exists()
    assert "parcels_scale_100.gpkg" in capsys.readouterr().out
