"""Deterministic synthetic 1/2000 zoning plans (quy hoạch phân khu) for the sample districts.

Why synthetic: the overlay, the loader and the API need plans whose zones cut the sample
parcels in known ways, in the formats and CRSs planning offices deliver, and real plan
files are neither small nor freely licensed.

Geometry: the zones follow the sample town's streets (``cadastre.town``), as a 1/2000
zoning plan's do: each zone is a block with about half of every street round it (zone
lines along the street centrelines, a tenth of the street's width off them as two
surveys differ), so street parcels are cut lengthwise and lots lie wholly in one zone.
One main road per district is planned wider (4 m more on each side: a red line, chỉ giới
đường đỏ), a road zone that cuts into the frontage lots along it. A river beyond the
town's edge is a water zone; a zone that is mostly lake is planned as water. Planned uses
follow an urban zoning mix (residential ODT, commerce TMD, schools DGD, green space DKV,
...), so many parcels' current use disagrees with the plan. Coverage (mật độ xây dựng),
floors and floor-area ratio are typical of Vietnamese zoning tables for each use. One Ba
Đình zone carries the 2018 code DSH (the loader maps it to DKV and reports the repair).

Delivery: two GeoPackages in WGS84 and two Shapefiles in the province's TM-3 (Hà Nội
EPSG:5897, Đà Nẵng EPSG:5899), each with a ``<stem>.plan.yaml`` sidecar holding the plan's
metadata, and ``manifest.json``. Run ``python -m planning.samplegen --out data/samples/plans``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import shapely
import yaml
from pyogrio.raw import write as ogr_write

from cadastre.samplegen import (
    DEFAULT_SEED as PARCEL_SEED,
)
from cadastre.samplegen import (
    ascii_slug,
    fixed_file_dates,
    layer_options,
    remove_dataset,
    reproject,
)
from cadastre.town import Town, build_town

PROJECT_DIR = Path(__file__).resolve().parent.parent
PARCEL_SAMPLES = PROJECT_DIR / "data" / "samples"
DEFAULT_OUT = PARCEL_SAMPLES / "plans"
DEFAULT_SEED = 2025
WGS84 = 4326
WIDENED = 1  # the east-west main road (north to south) the plan widens
WIDENING_M = 4.0  # on each side of it
WATER_ZONE = 0.5  # a zone more than this share water is planned as water
OFF_CENTRE = 0.1  # zone lines: a tenth of the street's width off its centreline
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
# Uses no zone draws at random: the widened road and water follow the town.
FIXED_USES: dict[str, UseRule] = {
    "MNC": UseRule(0, "Mặt nước hồ", None, None),
    "SON": UseRule(0, "Mặt nước sông", None, None),
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


def zone_cells(town: Town) -> tuple[np.ndarray, list[str], dict[int, str]]:
    """The zones of a town (TM-3): rectangles between street centrelines, the widened
    road's strip, the river; their codes (A01, ...; GT01 the road; MN01 the river) and
    the uses they are given by the town (index -> code)."""
    lines = [ln for ln in town.lines if ln.kind in ("main", "street")]
    # about on the centreline: the plan's line is OFF_CENTRE of the street's width east
    # (south) of the cadastre's, as two surveys of one street differ
    vertical = sorted({round(ln.geom.coords[0][0] + OFF_CENTRE * ln.width, 2)
                       for ln in lines if ln.geom.coords[0][0] == ln.geom.coords[1][0]})
    horizontal = sorted({round(ln.geom.coords[0][1] - OFF_CENTRE * ln.width, 2)
                         for ln in lines if ln.geom.coords[0][1] == ln.geom.coords[1][1]})
    # the zones reach the town's outer edge, not the outer roads' centrelines
    edge = shapely.bounds(shapely.coverage_union_all(town.geoms[town.kind != "water"]))
    xs = [edge[0], *vertical[1:-1], edge[2]]
    mains = sorted((ln for ln in lines if ln.kind == "main"
                    and ln.geom.coords[0][1] == ln.geom.coords[1][1]),
                   key=lambda ln: -ln.geom.coords[0][1])
    road = mains[WIDENED]
    half = road.width / 2 + WIDENING_M
    cy = road.geom.coords[0][1]
    ys = sorted({edge[1], *[y for y in horizontal[1:-1] if abs(y - cy) > half + 5],
                 cy - half, cy + half, edge[3]}, reverse=True)
    polys, codes, fixed = [], [], {}
    row = 0
    for top, bottom in zip(ys[:-1], ys[1:], strict=True):
        if bottom == cy - half:  # the widened road: one zone across the town
            fixed[len(polys)] = "DGT"
            polys.append(shapely.box(xs[0], bottom, xs[-1], top))
            codes.append("GT01")
            continue
        for c, (left, right) in enumerate(zip(xs[:-1], xs[1:], strict=True)):
            polys.append(shapely.box(left, bottom, right, top))
            codes.append(f"{chr(ord('A') + row)}{c + 1:02d}")
        row += 1
    water = town.kind == "water"
    rivers = water & (town.land_use == "SON")
    if rivers.any():
        fixed[len(polys)] = "SON"
        polys.append(shapely.coverage_union_all(town.geoms[rivers]))
        codes.append("MN01")
    lake = shapely.union_all(town.geoms[water & ~rivers]) if (water & ~rivers).any() \
        else None
    if lake is not None:
        for i, p in enumerate(polys):
            if i not in fixed and shapely.area(shapely.intersection(p, lake)) > \
                    WATER_ZONE * p.area:
                fixed[i] = "MNC"
    polys = np.array(polys, dtype=object)
    polys = shapely.normalize(polys)  # canonical vertex order: stable files
    polys = shapely.orient_polygons(polys)  # counter-clockwise shells (RFC 7946)
    return polys, codes, fixed


def zone_attributes(polys: np.ndarray, rng: np.random.Generator, district_code: str,
                    fixed: dict[int, str]) -> dict[str, np.ndarray]:
    n = len(polys)
    names = np.array([c for c in USES if c != "DGT"], dtype=object)
    weights = np.array([USES[c].weight for c in names])
    use = names[rng.choice(len(names), size=n, p=weights / weights.sum())]
    for i, code in fixed.items():
        use[i] = code
    rules = {**USES, **FIXED_USES}
    cov_u, floor_u, far_u = rng.random(n), rng.random(n), rng.uniform(0.6, 0.9, n)
    factor = rng.uniform(*AREA_FACTOR, n)
    coverage = np.full(n, np.nan)
    floors = np.zeros(n, dtype=np.int32)
    far = np.full(n, np.nan)
    for i, code in enumerate(use):
        rule = rules[code]
        if rule.coverage is None:
            continue  # roads and water: no building rules
        lo, hi = rule.coverage
        coverage[i] = lo + round(cov_u[i] * (hi - lo) / 5) * 5 if hi - lo >= 5 else hi
        floors[i] = rule.floors[0] + int(floor_u[i] * (rule.floors[1] - rule.floors[0] + 1))
        far[i] = round(coverage[i] / 100 * floors[i] * far_u[i], 2)
    functions = np.array([rules[c].function for c in use], dtype=object)
    if district_code == LEGACY[0]:
        free = [i for i in range(n) if i not in fixed]
        parks = [i for i in free if use[i] == "DKV"] or free[:1]
        use[parks[0]] = LEGACY[1]
        functions[parks[0]] = USES["DKV"].function
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
            polys, codes, fixed = zone_cells(build_town(spec.district_code, PARCEL_SEED))
            data = {"MaODat": np.array(codes, dtype=object),
                    **zone_attributes(polys, rng, spec.district_code, fixed)}
            meta = sidecar(entry, rng)
            geoms = reproject(polys, tm3, epsg)
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
- **Generated sample data.** Zones follow the sample town's streets
  (`cadastre/town.py`): each is a block with about half of every street round it (zone
  lines along the street centrelines, a tenth of the street's width off them), so zones
  tile the town without gaps or overlaps, street parcels are cut lengthwise and lots lie
  wholly in one zone. One
  east-west main road per district is planned 4 m wider on each side (a red line): its
  zone (GT01, DGT) cuts into the frontage lots along it. The Hàn river (Hải Châu) is a
  water zone (MN01, SON); a zone that is mostly lake is planned as water (MNC).
- Fields (national names): MaODat (zone code, A01...), MaLoaiDat (planned land-use code,
  Thông tư 08/2024), ChucNang (function), DienTich (stated area, m² = TM-3 area x
  [0.998, 1.002]), MatDoXD (building coverage %), TangCao (maximum floors), HeSoSDD
  (floor-area ratio). Roads (DGT) and water (MNC, SON) have no coverage or floor-area
  ratio (null) and 0 floors.
- One Ba Đình zone carries the superseded 2018 code DSH, which the loader maps to DKV.

## How they were made
```
python -m planning.samplegen --out data/samples/plans
```
Deterministic (numpy `default_rng`, seed {seed}, per district); it reads
`data/samples/manifest.json` and builds the same towns as the parcels (seed 2025).
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
