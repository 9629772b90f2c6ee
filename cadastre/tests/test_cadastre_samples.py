"""The synthetic sample generator: deterministic, readable, topologically clean files.

No database: the loaders' and the API's tests build on these files, so their guarantees
(exact tiling, unique keys, stated areas close to computed ones) are checked here.
"""

from __future__ import annotations

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
CURRENT_CODES = set(samplegen.LAND_USE_WEIGHTS)


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
        assert 1500 <= m["feature_count"] <= 2500
        assert 0.25 <= m["owner_count"] / m["feature_count"] <= 0.35
        assert (out / m["file"]).exists()
    assert (out / "manifest.json").exists() and (out / "README.md").exists()
    for sidecar in (".prj", ".cpg", ".dbf", ".shx"):
        assert (out / f"parcels_001_ba_dinh{sidecar}").exists()
    assert (out / "parcels_001_ba_dinh.cpg").read_text().strip() == "UTF-8"
    total = sum(p.stat().st_size for p in out.iterdir())
    assert total < 5_000_000


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
        expected = samplegen.output_field_names(m["field_convention"], m["format"])
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
    communes = {code: d.communes for code, d in samplegen.load_districts().items()}
    for m in manifest:
        df = read_canonical(out / m["file"], m)
        keys = df[["MaXa", "SoHieuToBanDo", "SoThuTuThua"]]
        assert not keys.duplicated().any(), m["file"]
        assert sorted(df["MaXa"].unique()) == sorted(communes[m["district_code"]])
        # Parcel numbers run 1..M within each (commune, sheet).
        for _, numbers in df.groupby(["MaXa", "SoHieuToBanDo"])["SoThuTuThua"]:
            assert sorted(numbers) == list(range(1, len(numbers) + 1))
        computed = shapely.area(tm3_geometries(df, m))
        assert (np.abs(df["DienTich"] / computed - 1) <= 0.005).all(), m["file"]
        assert (df["DienTich"] == df["DienTich"].round(1)).all()

        codes = set(df["KyHieuMucDichSuDung"])
        if m["district_code"] == "001":
            share = (df["KyHieuMucDichSuDung"] == "BHK").mean()
            assert 0.003 <= share <= 0.02 and share * len(df) == m["legacy_code_count"]
            assert codes <= CURRENT_CODES | {"BHK"}
        else:
            assert codes <= CURRENT_CODES
        assert 0.45 <= (df["KyHieuMucDichSuDung"] == "ODT").mean() <= 0.65

        owned = df["TenChu"].notna()
        for col in ("SoCCCD", "SoGCN", "NgayCapGCN"):
            assert (df[col].notna() == owned).all(), (m["file"], col)
        cccd = rf"0{m['province_code']}[0-3]\d{{8}}"
        assert df.loc[owned, "SoCCCD"].str.fullmatch(cccd).all()
        assert df.loc[owned, "SoGCN"].str.fullmatch(r"[A-Z]{2} \d{6}").all()
        assert not df.loc[owned, "SoGCN"].duplicated().any()
        assert df.loc[owned, "TenChu"].str.split().map(len).eq(3).all()
        years = pd.to_datetime(df.loc[owned, "NgayCapGCN"]).dt.year
        assert years.between(2005, 2024).all()


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
