"""Deterministic sample boundaries: the communes of the sample districts.

Why derived from the parcels' own grid: the sample parcels (``cadastre.samplegen``) tile
each sample district, each commune owning a contiguous strip of grid columns. A commune's
boundary here is the union of exactly the cells its parcels are, built from the same
seeded grid, so every sample parcel lies inside its commune's boundary by construction
(shared vertices, no tolerance needed) and the districts derived from these communes are
the rectangles the parcels tile. Regenerating gives the same files.

Two deliveries, as offices send them: the Hà Nội communes (Ba Đình, Tây Hồ) as a Shapefile
in VN-2000 / TM-3 105° with national field names, the Đà Nẵng communes (Thanh Khê, Hải
Châu) as a GeoPackage in WGS84 with Vietnamese field names. Both are pre-2025 units (with
their districts).

A third: the communes since the 1 July 2025 reform over the same four districts, made from
the crosswalk (``admin_units_2025_crosswalk.csv``). An old commune that went wholly into a
new one is part of it as it is; one split between k new communes is cut with k - 1
east-west lines into k bands of equal height of its box, south to north in the new
communes' code order (a rule of these samples, not of the reform: the real lines follow
streets and the resolutions' maps). A new commune is the union of its parts; only its
parts inside the four sample districts are drawn (new Phường Hoàn Kiếm, for one, appears
as its share of old Phường Điện Biên). Run ``python -m boundaries.samplegen --out
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
    SAMPLE_TARGET_PARCELS,
    WGS84,
    fixed_file_dates,
    iter_parcel_chunks,
    layer_options,
    plan_grid,
    remove_dataset,
    sample_districts,
)

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_OUT = PROJECT_DIR / "data" / "samples" / "boundaries"
# file, driver, layer, CRS (None: the province's TM-3), field names, districts
DELIVERIES = (
    ("dia_gioi_xa_ha_noi.shp", "ESRI Shapefile", None, None,
     ("MaXa", "TenXa", "MaHuyen", "TenHuyen", "MaTinh"), ("001", "003")),
    ("dia_gioi_xa_da_nang.gpkg", "GPKG", "dia_gioi_xa", WGS84,
     ("Mã xã", "Tên xã", "Mã huyện", "Tên huyện", "Mã tỉnh"), ("491", "492")),
)


# The 2025 delivery: file, layer, fields (new commune code and name, province code, name).
DELIVERY_2025 = ("dia_gioi_xa_2025.gpkg", "dia_gioi_xa",
                 ("MaXa", "TenXa", "MaTinh", "TenTinh"), ("001", "003", "491", "492"))


def crosswalk(reference_dir: Path = REFERENCE_DIR) -> dict[str, list[dict]]:
    """Old commune code -> its rows of the 2025 crosswalk, in new-commune code order."""
    out: dict[str, list[dict]] = {}
    with (reference_dir / "admin_units_2025_crosswalk.csv").open(encoding="utf-8",
                                                                 newline="") as f:
        for r in csv.DictReader(f):
            out.setdefault(r["old_commune_code"], []).append(r)
    return {k: sorted(v, key=lambda r: r["new_commune_code"]) for k, v in out.items()}


def cut(old: shapely.Geometry, parts: int) -> list[shapely.Geometry]:
    """An old commune split between ``parts`` new ones: ``parts`` bands of equal height of
    its box, south to north (the samples' deterministic line, see the module docstring)."""
    x0, y0, x1, y1 = old.bounds
    step = (y1 - y0) / parts
    bands = [shapely.clip_by_rect(old, x0, y0 + i * step, x1,
                                  y1 if i == parts - 1 else y0 + (i + 1) * step)
             for i in range(parts)]
    return [shapely.make_valid(b) for b in bands]


def communes_2025(seed: int, reference_dir: Path = REFERENCE_DIR
                  ) -> list[tuple[dict, shapely.Geometry]]:
    """(the new commune's crosswalk row, its boundary in WGS84) over the sample
    districts, in code order."""
    xwalk = crosswalk(reference_dir)
    pieces: dict[str, list[shapely.Geometry]] = {}
    rows: dict[str, dict] = {}
    for district in DELIVERY_2025[3]:
        for old_code, old in commune_boundaries(district, seed, 4326):
            targets = xwalk[old_code]
            shares = [old] if len(targets) == 1 else cut(old, len(targets))
            for row, share in zip(targets, shares, strict=True):
                polygons = [g for g in shapely.get_parts(share)
                            if shapely.get_type_id(g) == 3 and g.area > 0]
                pieces.setdefault(row["new_commune_code"], []).extend(polygons)
                rows[row["new_commune_code"]] = row
    out = []
    for code in sorted(pieces):
        merged = shapely.make_valid(shapely.union_all(pieces[code]))
        polygons = [g for g in shapely.get_parts(merged) if shapely.get_type_id(g) == 3]
        out.append((rows[code], shapely.multipolygons(polygons)))
    return out


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


def names(reference_dir: Path = REFERENCE_DIR) -> dict[str, tuple[str, str]]:
    """Commune code -> (commune name, district name), from the GSO list."""
    with (reference_dir / "admin_units_pre2025.csv").open(encoding="utf-8", newline="") as f:
        return {r["commune_code"]: (r["commune_name"], r["district_name"])
                for r in csv.DictReader(f)}


def commune_boundaries(code: str, seed: int, epsg: int | None
                       ) -> list[tuple[str, shapely.Geometry]]:
    """(commune code, boundary) of one sample district, in ``epsg`` (None: its TM-3):
    the union of the commune's sample parcels, cell for cell."""
    district = sample_districts()[code]
    grid = plan_grid(district, SAMPLE_TARGET_PARCELS)
    out_epsg = epsg or district.epsg
    cells, communes = [], []
    for geoms, data in iter_parcel_chunks(district, grid, seed, out_epsg,
                                          chunk_size=grid.n_cells):
        cells.append(geoms)
        communes.append(data["MaXa"])
    cells_all, codes = np.concatenate(cells), np.concatenate(communes)
    return [(c, shapely.coverage_union_all(cells_all[codes == c]))
            for c in district.communes]


def generate(out_dir: Path, seed: int = DEFAULT_SEED) -> list[dict]:
    """Write the sample boundary files, ``manifest.json`` and ``README.md``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    known = names()
    districts = sample_districts()
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

A commune's boundary is the union of the sample parcels of that commune, from the same
seeded grid `cadastre/samplegen.py` lays them on, so every sample parcel lies inside its
commune's boundary, and each district's boundary (derived by the loader as the union of
its communes) is the rectangle its parcels tile. They are not the real boundaries: codes
and names are the GSO catalogue's, the shapes are the samples'.

The 2025 communes (`dia_gioi_xa_2025.gpkg`) are made from the pre-2025 sample communes and
the 2025 crosswalk: an old commune that went wholly into a new one is part of it as it is;
one split between k new communes is cut with k - 1 east-west lines into k bands of equal
height of its box, south to north in the new communes' code order. That line is a rule of
these samples (the real lines follow streets); only the new communes' parts inside the
four sample districts are drawn, so a new commune that also took wards of other districts
(Phường Hoàn Kiếm, Phường Hồng Hà, ...) is only its share here.

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
