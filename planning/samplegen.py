"""Deterministic synthetic 1/2000 zoning plans (quy hoạch phân khu) for the sample districts.

Why synthetic: the overlay, the loader and the API need plans whose zones cut the sample
parcels in known ways, in the formats and CRSs planning offices deliver, and real plan
files are neither small nor freely licensed.

Geometry: each sample district's parcel file gives the TM-3 rectangle its parcels tile
(``data/samples/manifest.json``). Zones are the Voronoi cells of a jittered grid of seed
points, clipped to that rectangle: irregular blocks of ~0.2-0.8 km² that tile the
rectangle without gaps or overlaps and do not follow parcel boundaries, so most zones cut
parcels. Planned uses follow an urban zoning mix (residential ODT, commerce TMD, schools
DGD, green space DKV, roads DGT, ...), so many parcels' current use disagrees with the
plan. Coverage (mật độ xây dựng), floors and floor-area ratio are typical of Vietnamese
zoning tables for each use. One Ba Đình zone carries the 2018 code DSH (the loader maps it
to DKV and reports the repair).

Delivery: two GeoPackages in WGS84 and two Shapefiles in the province's TM-3 (Hà Nội
EPSG:5897, Đà Nẵng EPSG:5899), each with a ``<stem>.plan.yaml`` sidecar holding the plan's
metadata, and ``manifest.json``. Run ``python -m planning.samplegen --out data/samples/plans``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyogrio
import shapely
import yaml
from pyogrio.raw import write as ogr_write

from cadastre.samplegen import (
    ascii_slug,
    fixed_file_dates,
    layer_options,
    remove_dataset,
    transformer,
)

PROJECT_DIR = Path(__file__).resolve().parent.parent
PARCEL_SAMPLES = PROJECT_DIR / "data" / "samples"
DEFAULT_OUT = PARCEL_SAMPLES / "plans"
DEFAULT_SEED = 2025
WGS84 = 4326
TARGET_ZONE_M2 = 450_000  # ~0.45 km² a zone: 40-80 zones per sample district
MIN_ZONES, MAX_ZONES = 40, 80
JITTER = 0.35  # seed jitter, share of the grid spacing
AREA_FACTOR = (0.998, 1.002)  # stated area = computed area x factor
LEGACY = ("001", "DSH")  # one zone of this district carries this 2018 code
LAYER = "o_quy_hoach"

CANONICAL = ("MaODat", "MaLoaiDat", "ChucNang", "DienTich", "MatDoXD", "TangCao", "HeSoSDD")
FIELD_CONVENTIONS = {
    "national": CANONICAL,
    "vietnamese": ("Mã ô đất", "Loại đất quy hoạch", "Chức năng", "Diện tích",
                   "Mật độ xây dựng", "Tầng cao tối đa", "Hệ số sử dụng đất"),
    "snake_case": ("ma_o_dat", "ma_loai_dat", "chuc_nang", "dien_tich", "mat_do_xd",
                   "tang_cao", "he_so_sdd"),
}


@dataclass(frozen=True)
class UseRule:
    """A planned use: weight in the mix, function text, coverage %, floors (None: n/a)."""

    weight: float
    function: str
    coverage: tuple[int, int] | None
    floors: tuple[int, int] | None


USES: dict[str, UseRule] = {
    "ODT": UseRule(34, "Đất ở đô thị (nhà ở liên kế, chung cư)", (40, 70), (5, 25)),
    "TMD": UseRule(12, "Đất thương mại, dịch vụ", (40, 60), (9, 30)),
    "DGD": UseRule(8, "Đất trường học", (30, 40), (2, 5)),
    "DKV": UseRule(12, "Đất cây xanh, công viên, vui chơi giải trí", (0, 5), (1, 1)),
    "DGT": UseRule(10, "Đất giao thông, bãi đỗ xe", None, None),
    "CLN": UseRule(4, "Đất cây xanh cảnh quan (cây lâu năm)", (0, 5), (1, 1)),
    "SKC": UseRule(4, "Đất cơ sở sản xuất phi nông nghiệp", (50, 60), (1, 4)),
    "DYT": UseRule(4, "Đất y tế", (35, 45), (3, 9)),
    "DVH": UseRule(4, "Đất văn hóa", (30, 50), (2, 5)),
    "TSC": UseRule(4, "Đất trụ sở cơ quan", (35, 50), (5, 12)),
    "DTT": UseRule(4, "Đất thể dục thể thao", (10, 25), (1, 3)),
}


@dataclass(frozen=True)
class PlanSpec:
    district_code: str
    driver: str
    extension: str
    epsg: int | None  # None: the province's TM-3
    convention: str


SPECS = (
    PlanSpec("001", "ESRI Shapefile", "shp", None, "national"),
    PlanSpec("003", "GPKG", "gpkg", WGS84, "vietnamese"),
    PlanSpec("492", "ESRI Shapefile", "shp", None, "national"),
    PlanSpec("491", "GPKG", "gpkg", WGS84, "snake_case"),
)


def _reproject(geoms: np.ndarray, src: int, dst: int) -> np.ndarray:
    tr = transformer(src, dst)
    return shapely.transform(geoms,
                             lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def parcel_rectangle(entry: dict, samples_dir: Path) -> tuple[float, float, float, float]:
    """The TM-3 rectangle the district's sample parcels tile (read from the parcel file)."""
    frame = pyogrio.read_dataframe(samples_dir / entry["file"], columns=[],
                                   layer=entry.get("layer"))
    geoms = np.asarray(frame.geometry.values, dtype=object)
    if entry["epsg"] != entry["source_epsg"]:
        geoms = _reproject(geoms, entry["epsg"], entry["source_epsg"])
    xmin, ymin, xmax, ymax = (float(v) for v in shapely.total_bounds(geoms))
    return xmin, ymin, xmax, ymax


def zone_cells(rect: tuple[float, float, float, float], rng: np.random.Generator
               ) -> tuple[np.ndarray, list[str]]:
    """Voronoi cells of a jittered grid of seeds, clipped to ``rect``; codes A01, A02, ..."""
    xmin, ymin, xmax, ymax = rect
    width, height = xmax - xmin, ymax - ymin
    n = min(MAX_ZONES, max(MIN_ZONES, round(width * height / TARGET_ZONE_M2)))
    ncols = max(1, round(math.sqrt(n * width / height)))
    nrows = max(1, round(n / ncols))
    dx, dy = width / ncols, height / nrows
    rows, cols = np.divmod(np.arange(nrows * ncols), ncols)
    x = xmin + (cols + 0.5 + rng.uniform(-JITTER, JITTER, rows.size)) * dx
    y = ymax - (rows + 0.5 + rng.uniform(-JITTER, JITTER, rows.size)) * dy
    box = shapely.box(*rect)
    cells = shapely.voronoi_polygons(shapely.multipoints(np.column_stack([x, y])),
                                     extend_to=box, ordered=True)
    polys = shapely.intersection(np.asarray(shapely.get_parts(cells), dtype=object), box)
    polys = shapely.normalize(polys)  # canonical vertex order: stable files
    polys = shapely.orient_polygons(polys)  # counter-clockwise shells (RFC 7946)
    codes = [f"{chr(ord('A') + r)}{c + 1:02d}" for r, c in zip(rows, cols, strict=True)]
    return polys, codes


def zone_attributes(polys: np.ndarray, rng: np.random.Generator, district_code: str
                    ) -> dict[str, np.ndarray]:
    n = len(polys)
    names = np.array(list(USES), dtype=object)
    weights = np.array([u.weight for u in USES.values()])
    use = names[rng.choice(len(names), size=n, p=weights / weights.sum())]
    cov_u, floor_u, far_u = rng.random(n), rng.random(n), rng.uniform(0.6, 0.9, n)
    factor = rng.uniform(*AREA_FACTOR, n)
    coverage = np.full(n, np.nan)
    floors = np.zeros(n, dtype=np.int32)
    far = np.full(n, np.nan)
    for i, code in enumerate(use):
        rule = USES[code]
        if rule.coverage is None:
            continue  # roads: no building rules
        lo, hi = rule.coverage
        coverage[i] = lo + round(cov_u[i] * (hi - lo) / 5) * 5 if hi - lo >= 5 else hi
        floors[i] = rule.floors[0] + int(floor_u[i] * (rule.floors[1] - rule.floors[0] + 1))
        far[i] = round(coverage[i] / 100 * floors[i] * far_u[i], 2)
    functions = np.array([USES[c].function for c in use], dtype=object)
    if district_code == LEGACY[0]:
        k = int(np.flatnonzero(use == "DKV")[0])
        use[k] = LEGACY[1]
    return {"MaLoaiDat": use, "ChucNang": functions,
            "DienTich": np.round(shapely.area(polys) * factor, 1),
            "MatDoXD": coverage, "TangCao": floors, "HeSoSDD": far}


def sidecar(entry: dict, rng: np.random.Generator) -> dict:
    decided = date(2021, 1, 1) + timedelta(days=int(rng.integers(0, 3 * 365)))
    province = entry["province_name"]
    return {
        "plan_code": f"QHPK-{entry['district_code']}-2021-2030",
        "plan_type": "zoning_1_2000",
        "district": entry["district_code"],
        "period": "2021-2030",
        "scale": 2000,
        "decision_no": f"{int(rng.integers(1000, 9999))}/QĐ-UBND",
        "decision_date": decided,
        "approved_by": f"Ủy ban nhân dân {province}",
        "title": f"Quy hoạch phân khu tỷ lệ 1/2000 {entry['district_name']}, {province}",
    }


def generate_plans(out_dir: Path, seed: int = DEFAULT_SEED,
                   samples_dir: Path = PARCEL_SAMPLES) -> list[dict]:
    """Write the four sample plans, their sidecars, ``manifest.json`` and ``README.md``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parcels = {e["district_code"]: e for e in json.loads(
        (samples_dir / "manifest.json").read_text(encoding="utf-8"))}
    manifest: list[dict] = []
    with fixed_file_dates():
        for spec in SPECS:
            entry = parcels[spec.district_code]
            tm3 = entry["source_epsg"]
            epsg = spec.epsg or tm3
            rng = np.random.default_rng([seed, int(spec.district_code), 7])
            polys, codes = zone_cells(parcel_rectangle(entry, samples_dir), rng)
            data = {"MaODat": np.array(codes, dtype=object),
                    **zone_attributes(polys, rng, spec.district_code)}
            meta = sidecar(entry, rng)
            geoms = polys if epsg == tm3 else _reproject(polys, tm3, epsg)
            names = dict(zip(CANONICAL, FIELD_CONVENTIONS[spec.convention], strict=True))
            stem = f"zoning_{spec.district_code}_{ascii_slug(entry['district_name'])}"
            path = out_dir / f"{stem}.{spec.extension}"
            remove_dataset(path)
            ogr_write(path, np.asarray(shapely.to_wkb(geoms), dtype=object),
                      [data[c] for c in CANONICAL], [names[c] for c in CANONICAL],
                      layer=LAYER if spec.driver == "GPKG" else stem, driver=spec.driver,
                      geometry_type="Polygon", crs=f"EPSG:{epsg}",
                      encoding="UTF-8" if spec.driver == "ESRI Shapefile" else None,
                      layer_options=layer_options(spec.driver))
            side = out_dir / f"{stem}.plan.yaml"
            side.write_text(f"# Plan metadata for {path.name} (read by `lis load plan`; "
                            f"command-line options override it)\n"
                            + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False),
                            encoding="utf-8")
            manifest.append({
                "file": path.name,
                "sidecar": side.name,
                "plan_code": meta["plan_code"],
                "plan_type": meta["plan_type"],
                "district_code": spec.district_code,
                "district_name": entry["district_name"],
                "format": spec.driver,
                "layer": LAYER if spec.driver == "GPKG" else None,
                "epsg": epsg,
                "source_epsg": tm3,
                "field_convention": spec.convention,
                "fields": names,
                "zone_count": len(polys),
                "legacy_code_count": int(np.count_nonzero(data["MaLoaiDat"] == LEGACY[1])),
                "total_stated_area_m2": round(float(data["DienTich"].sum()), 1),
                "seed": seed,
            })
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out_dir / "README.md").write_text(_readme(manifest), encoding="utf-8")
    return manifest


def _readme(manifest: list[dict]) -> str:
    seed = manifest[0]["seed"] if manifest else DEFAULT_SEED
    rows = "\n".join(
        f"| `{m['file']}` | `{m['plan_code']}` | {m['district_code']} {m['district_name']} | "
        f"{m['format']} | EPSG:{m['epsg']} | {m['field_convention']} | {m['zone_count']} |"
        for m in manifest)
    return f"""# Sample zoning plans (synthetic)

One 1/2000 zoning plan (quy hoạch phân khu, `zoning_1_2000`, 2021-2030) per sample
district, delivered as planning offices deliver them: GeoPackage in WGS84 or Shapefile in
the province's VN-2000 TM-3, with the plan's metadata in a `<stem>.plan.yaml` sidecar
(plan_code, plan_type, district, period, scale, decision_no, decision_date, approved_by,
title), which `lis load plan FILE` reads (command-line options override it).

| File | Plan | District | Format | CRS | Field names | Zones |
|---|---|---|---|---|---|---:|
{rows}

`manifest.json` lists the same facts per file; read it rather than hard-coding counts.

## What is in the files
- Zones: Voronoi cells of a jittered grid of seeds, clipped to the TM-3 rectangle the
  district's sample parcels tile, so zones tile it without gaps or overlaps and cut
  parcels (zones do not follow parcel boundaries).
- Fields (national names): MaODat (zone code, A01...), MaLoaiDat (planned land-use code,
  Thông tư 08/2024), ChucNang (function), DienTich (stated area, m² = TM-3 area x
  [0.998, 1.002]), MatDoXD (building coverage %), TangCao (maximum floors), HeSoSDD
  (floor-area ratio). Roads (DGT) have no coverage or floor-area ratio (null) and 0 floors.
- One Ba Đình zone carries the superseded 2018 code DSH, which the loader maps to DKV.

## How they were made
```
python -m planning.samplegen --out data/samples/plans
```
Deterministic (numpy `default_rng`, seed {seed}, per district); it reads
`data/samples/manifest.json` and the parcel files, so regenerate the parcels first.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m planning.samplegen",
                                     description="Generate the deterministic sample plans.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output directory (default: {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--samples", type=Path, default=PARCEL_SAMPLES,
                        help="folder of the parcel samples and their manifest.json")
    args = parser.parse_args(argv)
    for entry in generate_plans(args.out, args.seed, args.samples):
        print(f"{entry['file']}: plan {entry['plan_code']}, {entry['zone_count']} zones, "
              f"EPSG:{entry['epsg']}")
    print(f"wrote {Path(args.out) / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
