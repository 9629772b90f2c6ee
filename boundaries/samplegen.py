"""Deterministic sample boundaries: the communes of the sample districts.

Why derived from the sample parcels: the sample parcels (``cadastre.samplegen``) are a
town per sample district (``cadastre.town``), each parcel in one real pre-2025 ward. A
commune's boundary here is the union of exactly its parcels (lots, streets, alleys and its
share of a lake or river), built from the same seeded town, so every sample parcel lies
inside its commune's boundary by construction (the parcels are noded: shared vertices, no
tolerance needed). Regenerating gives the same files.

Two deliveries, as offices send them: the Hà Nội communes (Ba Đình, Tây Hồ) as a Shapefile
in VN-2000 / TM-3 105° with national field names, the Đà Nẵng communes (Thanh Khê, Hải
Châu) as a GeoPackage in WGS84 with Vietnamese field names. Both are pre-2025 units (with
their districts).

A third: the communes since the 1 July 2025 reform over the same four towns, the union of
the parcels per 2025 commune. The town gives each parcel its 2025 commune: the only one of
its old ward's (``admin_units_2025_crosswalk.csv``), or, where the old ward was split
between k new ones, by block (the ward's blocks in k groups, north to south in the new
communes' code order, roads with their block), so the new lines follow streets as the
reform's do (a rule of these samples: the real lines are the resolutions' maps). Only the
new communes' parts inside the four towns are drawn (new Phường Hoàn Kiếm, for one,
appears as its share of old Phường Điện Biên). Run ``python -m boundaries.samplegen --out
data/samples/boundaries``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import shapely
from pyogrio.raw import write as ogr_write

from cadastre.samplegen import (
    DEFAULT_SEED,
    REFERENCE_DIR,
    WGS84,
    fixed_file_dates,
    layer_options,
    remove_dataset,
    reproject,
)
from cadastre.town import build_town

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_OUT = PROJECT_DIR / "data" / "samples" / "boundaries"
# file, driver, layer, CRS (None: the province's TM-3), field names, districts
DELIVERIES = (
    ("dia_gioi_xa_ha_noi.shp", "ESRI Shapefile", None, None,
     ("MaXa", "TenXa", "MaHuyen", "TenHuyen", "MaTinh"), ("001", "003")),
    ("dia_gioi_xa_da_nang.gpkg", "GPKG", "dia_gioi_xa", WGS84,
     ("Mã xã", "Tên xã", "Mã huyện", "Tên huyện", "Mã tỉnh"), ("491", "492")),
)


# The sample districts themselves (pre-2025): their towns' outlines. The sample covers a few
# wards of each district, so the loader cannot derive a district from its communes (it
# waits for every commune); a district boundary delivery says where each sample is.
DISTRICTS = ("dia_gioi_huyen_mau.gpkg", "dia_gioi_huyen",
             ("MaHuyen", "TenHuyen", "MaTinh"), ("001", "003", "491", "492"))

# The 2025 delivery: file, layer, fields (new commune code and name, province code, name).
DELIVERY_2025 = ("dia_gioi_xa_2025.gpkg", "dia_gioi_xa",
                 ("MaXa", "TenXa", "MaTinh", "TenTinh"), ("001", "003", "491", "492"))


def crosswalk(reference_dir: Path = REFERENCE_DIR) -> dict[str, dict]:
    """New commune code -> its crosswalk row (name and province)."""
    out: dict[str, dict] = {}
    with (reference_dir / "admin_units_2025_crosswalk.csv").open(encoding="utf-8",
                                                                 newline="") as f:
        for r in csv.DictReader(f):
            out[r["new_commune_code"]] = r
    return out


def _multi(geom: shapely.Geometry) -> shapely.Geometry:
    polygons = [g for g in shapely.get_parts(geom) if shapely.get_type_id(g) == 3]
    return shapely.multipolygons(polygons)


def communes_2025(seed: int, reference_dir: Path = REFERENCE_DIR
                  ) -> list[tuple[dict, shapely.Geometry]]:
    """(the new commune's crosswalk row, its boundary in WGS84) over the sample towns,
    in code order: the union of the parcels the towns place in it."""
    rows = crosswalk(reference_dir)
    pieces: dict[str, list[shapely.Geometry]] = {}
    for district in DELIVERY_2025[3]:
        town = build_town(district, seed)
        for code in sorted(set(town.commune_2025)):
            union = shapely.coverage_union_all(town.geoms[town.commune_2025 == code])
            pieces.setdefault(code, []).extend(
                shapely.get_parts(reproject(np.array([union], dtype=object),
                                      town.district.epsg, WGS84)[0]))
    return [(rows[code], _multi(shapely.union_all(pieces[code]))) for code in sorted(pieces)]


def generate_2025(out_dir: Path, seed: int) -> dict:
    """Write the 2025 communes' GeoPackage; its manifest entry."""
    file, layer, fields, districts = DELIVERY_2025
    rows = communes_2025(seed)
    path = out_dir / file
    remove_dataset(path)
    values = [np.array([r[k] for r, _ in rows], dtype=object)
              for k in ("new_commune_code", "new_commune_name", "new_province_code",
                        "new_province_name")]
    ogr_write(path, np.asarray(shapely.to_wkb([g for _, g in rows]), dtype=object), values,
              list(fields), layer=layer, driver="GPKG", geometry_type="MultiPolygon",
              crs=f"EPSG:{WGS84}", layer_options=layer_options("GPKG"))
    return {"file": file, "period": "2025", "level": "commune", "format": "GPKG",
            "layer": layer, "epsg": 4326, "fields": list(fields),
            "district_codes": list(districts), "feature_count": len(rows), "seed": seed}


def generate_districts(out_dir: Path, seed: int) -> dict:
    """Write the sample districts' boundaries (the union of their towns' parcels, WGS84);
    its manifest entry."""
    file, layer, fields, codes = DISTRICTS
    towns = [build_town(d, seed) for d in codes]
    geoms = [_multi(reproject(np.array([shapely.coverage_union_all(t.geoms)], dtype=object),
                        t.district.epsg, WGS84)[0]) for t in towns]
    path = out_dir / file
    remove_dataset(path)
    values = [np.array([t.district.code for t in towns], dtype=object),
              np.array([t.district.name for t in towns], dtype=object),
              np.array([t.district.province_code for t in towns], dtype=object)]
    ogr_write(path, np.asarray(shapely.to_wkb(geoms), dtype=object), values, list(fields),
              layer=layer, driver="GPKG", geometry_type="MultiPolygon",
              crs=f"EPSG:{WGS84}", layer_options=layer_options("GPKG"))
    return {"file": file, "period": "pre2025", "level": "district", "format": "GPKG",
            "layer": layer, "epsg": 4326, "fields": list(fields),
            "district_codes": list(codes), "feature_count": len(towns), "seed": seed}


def names(reference_dir: Path = REFERENCE_DIR) -> dict[str, tuple[str, str]]:
    """Commune code -> (commune name, district name), from the GSO list."""
    with (reference_dir / "admin_units_pre2025.csv").open(encoding="utf-8", newline="") as f:
        return {r["commune_code"]: (r["commune_name"], r["district_name"])
                for r in csv.DictReader(f)}


def commune_boundaries(code: str, seed: int, epsg: int | None
                       ) -> list[tuple[str, shapely.Geometry]]:
    """(commune code, boundary) of one sample district, in ``epsg`` (None: its TM-3):
    the union of the commune's sample parcels, parcel for parcel."""
    town = build_town(code, seed)
    out = []
    for commune in sorted(set(town.commune)):
        union = shapely.coverage_union_all(town.geoms[town.commune == commune])
        out.append((commune, reproject(np.array([union], dtype=object), town.district.epsg,
                                 epsg or town.district.epsg)[0]))
    return out


def generate(out_dir: Path, seed: int = DEFAULT_SEED) -> list[dict]:
    """Write the sample boundary files, ``manifest.json`` and ``README.md``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    known = names()
    districts = {d: build_town(d, seed).district for d in DELIVERY_2025[3]}
    manifest = []
    with fixed_file_dates():
        for file, driver, layer, epsg, fields, codes in DELIVERIES:
            rows = [(c, g, d) for d in codes for c, g in commune_boundaries(d, seed, epsg)]
            file_epsg = epsg or districts[codes[0]].epsg
            geoms = shapely.multipolygons(
                [list(shapely.get_parts(g)) for _, g, _ in rows]) if rows else []
            values = [
                np.array([c for c, _, _ in rows], dtype=object),
                np.array([known[c][0] for c, _, _ in rows], dtype=object),
                np.array([d for _, _, d in rows], dtype=object),
                np.array([known[c][1] for c, _, _ in rows], dtype=object),
                np.array([districts[d].province_code for _, _, d in rows], dtype=object),
            ]
            path = out_dir / file
            remove_dataset(path)
            ogr_write(path, np.asarray(shapely.to_wkb(geoms), dtype=object), values,
                      list(fields), layer=layer or path.stem, driver=driver,
                      geometry_type="MultiPolygon", crs=f"EPSG:{file_epsg}",
                      encoding="UTF-8" if driver == "ESRI Shapefile" else None,
                      layer_options=layer_options(driver))
            manifest.append({"file": file, "period": "pre2025", "level": "commune",
                             "format": driver, "layer": layer, "epsg": file_epsg,
                             "fields": list(fields), "district_codes": list(codes),
                             "feature_count": len(rows), "seed": seed})
        manifest.append(generate_districts(out_dir, seed))
        manifest.append(generate_2025(out_dir, seed))
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out_dir / "README.md").write_text(_readme(manifest), encoding="utf-8")
    return manifest


def _readme(manifest: list[dict]) -> str:
    rows = "\n".join(f"| `{m['file']}` | {m['period']} | {', '.join(m['district_codes'])} | "
                     f"{m['format']} | "
                     f"EPSG:{m['epsg']} | {', '.join(m['fields'])} | {m['feature_count']} |"
                     for m in manifest)
    return f"""# Sample administrative boundaries (synthetic)

The communes of the four sample districts, as boundary deliveries (`lis load boundaries
FILE --period pre2025|2025`; `lis load samples` loads them before the parcels, which are
then checked against the pre-2025 ones and placed in their 2025 commune by the 2025 ones).

| File | Period | Districts | Format | CRS | Fields | Communes |
|---|---|---|---|---|---|---:|
{rows}

**Generated sample data.** A commune's boundary is the union of the sample parcels of that
commune (its lots, streets, alleys and its share of a lake or river), from the same seeded
town `cadastre/town.py` lays them out in, so every sample parcel lies inside its commune's
boundary, and each district's boundary (derived by the loader as the union of its
communes) is the outline of its town: a few real wards of the district, not the whole
district (see `../README.md`). They are not the real boundaries: codes and names are the
GSO catalogue's, the shapes are the samples'.

The sample districts (`dia_gioi_huyen_mau.gpkg`, pre-2025 districts) are their towns'
outlines, the union of their communes here: the samples hold a few wards of each district,
and the loader derives a district from its communes only once every commune has a
boundary, so the sample delivers the district boundary of the part it covers (not the
real district's).

The 2025 communes (`dia_gioi_xa_2025.gpkg`) are the union of the parcels per 2025 commune.
An old ward that went wholly into a new one is part of it as it is; one split between k
new communes is split by block: its blocks in k groups of about equal count, north to
south in the new communes' code order, each street and alley piece with the block it was
cut with, so the new lines follow streets (a rule of these samples: the real lines are the
resolutions' maps). Only the new communes' parts inside the four towns are drawn, so a
new commune that also took wards of other districts (Phường Hoàn Kiếm, Phường Hồng Hà,
...) is only its share here.

Made by `python -m boundaries.samplegen --out data/samples/boundaries` (or `lis samples
generate`); deterministic (seed {manifest[0]['seed'] if manifest else DEFAULT_SEED}).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m boundaries.samplegen",
                                     description="Generate the sample commune boundaries.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    for entry in generate(args.out, args.seed):
        print(f"{entry['file']}: {entry['feature_count']} communes, EPSG:{entry['epsg']}")
    print(f"wrote {Path(args.out) / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
