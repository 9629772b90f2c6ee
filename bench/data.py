"""The benchmark's input: one GeoPackage of N parcels over >= 50 real districts.

``cadastre.samplegen.generate_scale`` spreads parcels over the 37 districts whose extents the
reference data knows (Hà Nội and Đà Nẵng). Issue 5 asks for at least 50 districts, so the
benchmark adds the 17 districts of Quảng Nam (province 49, which borders Đà Nẵng and
shares its TM-3 zone, EPSG:5899). Their codes and communes are the real pre-2025 ones;
only their *extents* are synthetic: a 6 x 3 grid of boxes laid over an approximate
Quảng Nam rectangle south of Đà Nẵng. The loader accepts them because it checks a parcel
against its district's extent only where the database knows one, and always against
Vietnam's bounds. Everything else (jittered grid tiling, keys, attributes, determinism)
is samplegen's own code, called through its public functions.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import shapely
from pyogrio.raw import write as ogr_write
from pyproj import Transformer

from cadastre import samplegen

SYNTH_PROVINCE = "49"  # Quảng Nam
# Approximate rectangle inside Quảng Nam, south of Đà Nẵng's extents (min lat 15.918).
SYNTH_AREA = (107.30, 15.05, 108.70, 15.85)
SYNTH_COLS, SYNTH_ROWS = 6, 3
SYNTH_INSET = 0.05  # share of a grid cell left empty on each side: boxes never touch
GENERATOR_VERSION = 3  # bump when the output of this module changes (invalidates caches)
LAYER = "thua_dat"
# The map scale the delivery states (its ``.parcels.yaml`` sidecar). samplegen states areas
# within 0.3% of the drawn ones; the bench spreads N parcels over 54 districts, so its
# parcels are far larger than a real ward's, and 0.3% of them passes the permissible area
# error ΔP = 0.0004·M·√P only at small scales: 1:10000, with the largest parcels' stated
# areas held inside it (``within_tolerance``). The loader does the same work at any scale.
SCALE = 10000


def write_sidecar(path: Path) -> Path:
    """``<file>.parcels.yaml`` beside the GeoPackage: the scale its sheets are at."""
    sidecar = path.with_name(path.name + ".parcels.yaml")
    sidecar.write_text(f"scale: {SCALE}\n", encoding="utf-8")
    return sidecar


@dataclass(frozen=True)
class SynthDistrict(samplegen.District):
    """A real district whose extent the reference data lacks; carries its province's CRS."""

    tm3_epsg: int = 0

    @property
    def epsg(self) -> int:
        return self.tm3_epsg


def _province_epsg(code: str) -> int:
    with (samplegen.REFERENCE_DIR / "province_tm3.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["province_code"] == code:
                return int(row["epsg"])
    raise LookupError(f"province {code} has no TM-3 EPSG in province_tm3.csv")


def synthetic_districts() -> list[SynthDistrict]:
    """Quảng Nam's districts (real codes, real communes) with synthetic extents."""
    communes: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    province_name = ""
    path = samplegen.REFERENCE_DIR / "admin_units_pre2025.csv"
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["province_code"] != SYNTH_PROVINCE:
                continue
            communes.setdefault(row["district_code"], []).append(row["commune_code"])
            names[row["district_code"]] = row["district_name"]
            province_name = row["province_name"]
    epsg = _province_epsg(SYNTH_PROVINCE)
    x0, y0, x1, y1 = SYNTH_AREA
    cw, ch = (x1 - x0) / SYNTH_COLS, (y1 - y0) / SYNTH_ROWS
    out = []
    for k, code in enumerate(sorted(communes)[: SYNTH_COLS * SYNTH_ROWS]):
        row, col = divmod(k, SYNTH_COLS)
        bx0 = x0 + (col + SYNTH_INSET) * cw
        by1 = y1 - (row + SYNTH_INSET) * ch
        bbox = (round(bx0, 5), round(by1 - (1 - 2 * SYNTH_INSET) * ch, 5),
                round(bx0 + (1 - 2 * SYNTH_INSET) * cw, 5), round(by1, 5))
        out.append(SynthDistrict(SYNTH_PROVINCE, province_name, code, names[code], bbox,
                                 tuple(sorted(communes[code])), tm3_epsg=epsg))
    return out


def fit_inside(district: samplegen.District) -> samplegen.District:
    """The district with its box shrunk so the TM-3 grid, seen in WGS84, stays inside it.

    samplegen tiles the TM-3 rectangle that *encloses* the WGS84 box; far from the central
    meridian (Đông Anh, Sóc Sơn) its corners stick out by more than the loader's 50 m
    margin and a strict load rejects those parcels. Shrinking the box by the overshoot
    (a few iterations) keeps every vertex inside the real extent.
    """
    to_tm3 = Transformer.from_crs(samplegen.WGS84, district.epsg, always_xy=True)
    to_wgs = Transformer.from_crs(district.epsg, samplegen.WGS84, always_xy=True)
    target = district.bbox
    box = list(target)
    t = np.linspace(0.0, 1.0, 41)
    for _ in range(8):
        x0, y0, x1, y1 = to_tm3.transform_bounds(*box, densify_pts=21)
        xs = np.concatenate([x0 + (x1 - x0) * t, np.full_like(t, x1),
                             x1 - (x1 - x0) * t, np.full_like(t, x0)])
        ys = np.concatenate([np.full_like(t, y0), y0 + (y1 - y0) * t,
                             np.full_like(t, y1), y1 - (y1 - y0) * t])
        lon, lat = to_wgs.transform(xs, ys)
        over = (target[0] - lon.min(), target[1] - lat.min(),
                lon.max() - target[2], lat.max() - target[3])
        if max(over) <= 0:
            break
        box = [box[0] + max(over[0], 0) + 1e-6, box[1] + max(over[1], 0) + 1e-6,
               box[2] - max(over[2], 0) - 1e-6, box[3] - max(over[3], 0) - 1e-6]
    return replace(district, bbox=tuple(float(v) for v in box))


def available_districts() -> tuple[list[samplegen.District], list[SynthDistrict]]:
    """(districts with known extents, districts with synthetic extents), in code order."""
    known = [fit_inside(d) for _, d in sorted(samplegen.load_districts().items())]
    return known, [fit_inside(d) for d in synthetic_districts()]


def choose_districts(count: int | None) -> list[samplegen.District]:
    """``count`` districts (None: all): known extents first, then synthetic ones."""
    known, synth = available_districts()
    pool = known + synth
    if count is None:
        return pool
    if not 1 <= count <= len(pool):
        raise ValueError(f"--districts must be between 1 and {len(pool)} "
                         f"({len(known)} with known extents + {len(synth)} synthetic)")
    return pool[:count]


@dataclass
class Dataset:
    path: Path
    parcels: int
    districts: list[str]
    known_extent_districts: int
    synthetic_extent_districts: int
    seconds: float
    reused: bool

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


def within_tolerance(geoms: np.ndarray, stated: np.ndarray, epsg: int) -> np.ndarray:
    """The stated areas, each held to half the permissible area error at ``SCALE`` of the
    drawn area in the district's TM-3 CRS: the largest parcels of a small bench (a few km²
    at 50,000 parcels) have a 0.3% noise wider than even 1:10000 allows, and a strict load
    of the file would refuse them. Parcels within it keep their stated area."""
    to_tm3 = Transformer.from_crs(samplegen.WGS84, epsg, always_xy=True)
    drawn = shapely.area(shapely.transform(
        geoms, lambda c: np.column_stack(to_tm3.transform(c[:, 0], c[:, 1]))))
    allowed = 0.5 * 0.0004 * SCALE * np.sqrt(drawn)
    return np.round(drawn + np.clip(stated - drawn, -allowed, allowed), 1)


def _write_chunk(path: Path, geoms: np.ndarray, data: dict[str, np.ndarray],
                 names: dict[str, str], append: bool) -> None:
    fields = samplegen.CANONICAL_FIELDS
    ogr_write(path, np.asarray(shapely.to_wkb(geoms), dtype=object),
              [data[c] for c in fields], [names[c] for c in fields], layer=LAYER,
              driver="GPKG", geometry_type="Polygon", crs=f"EPSG:{samplegen.WGS84}",
              append=append)


def generate(out_dir: Path, n: int, districts: int | None = None,
             seed: int = samplegen.DEFAULT_SEED,
             log: Callable[[str], None] = print) -> Dataset:
    """Write (or reuse) ``parcels_bench_<n>_<d>d.gpkg``: n parcels spread evenly.

    Generation is deterministic, so a file whose sidecar records the same parameters is
    reused rather than rewritten (1M parcels take ~1 min to generate).
    """
    chosen = choose_districts(districts)
    n_synth = sum(isinstance(d, SynthDistrict) for d in chosen)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"parcels_bench_{n}_{len(chosen)}d.gpkg"
    meta_path = path.with_suffix(".json")
    params = {"n": n, "districts": [d.code for d in chosen], "seed": seed,
              "version": GENERATOR_VERSION}
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("params") == params:
            write_sidecar(path)
            log(f"data: reusing {path} ({path.stat().st_size / 1e6:.0f} MB)")
            return Dataset(path, n, params["districts"], len(chosen) - n_synth, n_synth,
                           meta["seconds"], reused=True)
    path.unlink(missing_ok=True)
    meta_path.unlink(missing_ok=True)
    share, extra = divmod(n, len(chosen))
    names = samplegen.output_field_names("national", "GPKG")
    written = 0
    started = time.monotonic()
    for k, district in enumerate(chosen):
        target = share + (1 if k < extra else 0)
        if target == 0:
            continue
        grid = samplegen.plan_grid(district, target, exact=True)
        for geoms, data in samplegen.iter_parcel_chunks(district, grid, seed,
                                                        samplegen.WGS84,
                                                        serials=(k, len(chosen))):
            data["DienTich"] = within_tolerance(geoms, data["DienTich"], district.epsg)
            _write_chunk(path, geoms, data, names, append=written > 0)
            written += len(geoms)
    if written != n:
        raise RuntimeError(f"wrote {written} parcels, expected {n}")
    seconds = time.monotonic() - started
    write_sidecar(path)
    meta_path.write_text(json.dumps({"params": params, "seconds": seconds}, indent=1))
    log(f"data: wrote {path} ({n:,} parcels, {len(chosen)} districts, "
        f"{path.stat().st_size / 1e6:.0f} MB) in {seconds:.0f} s")
    return Dataset(path, n, params["districts"], len(chosen) - n_synth, n_synth, seconds,
                   reused=False)
