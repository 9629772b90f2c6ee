"""The price surface of a district: a Cloud-Optimized GeoTIFF of unit prices (VND/m²).

Each parcel of the district's latest valuation run is burnt in with the table rate of its
primary land-use part (``publish.parcel_values.unit_price``); outside parcels, and where the
primary part has no price, the raster holds nodata (0: prices are > 0). Why EPSG:4326 and
not the TM-3: the OGC API coverage is requested with a WGS84 bbox, which pygeoapi's rasterio
provider applies without reprojection (an exact window) only when the raster is in the
bbox's CRS; web maps and the planner's map place it without resampling either.
Resolution: 0.00002° (about 2.2 m north-south and 2.1 m east-west at 16-21° N), pixel edges
on multiples of it, so a district's grid never shifts between runs.

Also written: ``price-surface-<d>.png``, a small colour preview (same extent) that the
planner's map overlays instead of fetching millions of CoverageJSON values.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.features import rasterize
from rasterio.transform import from_origin
from sqlalchemy import text
from sqlalchemy.engine import Engine

RES_DEG = 0.00002
NODATA = 0
PREVIEW_MAX_PX = 1024
# Blue (cheap) to red (dear), as the planner's map draws prices.
RAMP = ((0x2C, 0x7B, 0xB6), (0xAB, 0xD9, 0xE9), (0xFF, 0xFF, 0xBF), (0xFD, 0xAE, 0x61),
        (0xD7, 0x19, 0x1C))


# COG blocks of 256 pixels: a district's surface is a few hundred pixels across (the
# sample towns' about 430 x 370), and with 512 it would be one block that a client must
# fetch whole for any window.
BLOCK = 256

def coverage_id(district: str) -> str:
    return f"price-surface-{district}"


def surface_path(var_dir: Path, district: str) -> Path:
    return var_dir / "coverages" / f"{coverage_id(district)}.tif"


def preview_path(var_dir: Path, district: str) -> Path:
    return surface_path(var_dir, district).with_suffix(".png")


def _grid(bounds: tuple[float, float, float, float], res: float
          ) -> tuple[rasterio.Affine, int, int]:
    west = math.floor(bounds[0] / res) * res
    south = math.floor(bounds[1] / res) * res
    east = math.ceil(bounds[2] / res) * res
    north = math.ceil(bounds[3] / res) * res
    width, height = round((east - west) / res), round((north - south) / res)
    return from_origin(west, north, res, res), width, height


def write_surface(engine: Engine, district: str, var_dir: Path, res: float = RES_DEG
                  ) -> Path | None:
    """Rasterize the district's latest run; None (and no file) when it has no priced parcel.

    Written to a temporary name and renamed, so a server never reads half a file.
    """
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT ST_AsBinary(geom) AS wkb, unit_price, run_id, table_code, valued_on
              FROM publish.parcel_values
             WHERE district_code = :d AND unit_price IS NOT NULL
             ORDER BY id
        """), {"d": district}).all()
    path = surface_path(var_dir, district)
    if not rows:
        path.unlink(missing_ok=True)
        preview_path(var_dir, district).unlink(missing_ok=True)
        return None
    geoms = shapely.from_wkb([bytes(r.wkb) for r in rows])
    bounds = shapely.total_bounds(geoms)
    transform, width, height = _grid(tuple(bounds), res)
    values = rasterize(zip(geoms, (int(r.unit_price) for r in rows), strict=True),
                       out_shape=(height, width), transform=transform, fill=NODATA,
                       dtype="uint32")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    profile = {"driver": "COG", "width": width, "height": height, "count": 1,
               "dtype": "uint32", "crs": "EPSG:4326", "transform": transform,
               "nodata": NODATA, "compress": "DEFLATE", "blocksize": BLOCK,
               "overview_resampling": "nearest"}
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(values, 1)
        dst.set_band_description(1, "unit price (VND/m²)")
        dst.set_band_unit(1, "VND/m²")
        dst.update_tags(units="VND/m2", district_code=district, run_id=str(rows[0].run_id),
                        table_code=rows[0].table_code, valued_on=str(rows[0].valued_on),
                        source="landplatform valuation (primary land-use part, table rate)")
    os.replace(tmp, path)
    _write_preview(path, preview_path(var_dir, district))
    return path


def _colours(values: np.ndarray) -> np.ndarray:
    """RGBA of prices on the ramp (log scale: prices span orders of magnitude)."""
    rgba = np.zeros((4, *values.shape), dtype=np.uint8)
    present = values > NODATA
    if not present.any():
        return rgba
    logs = np.log(values[present].astype(float))
    lo, hi = logs.min(), logs.max()
    t = (logs - lo) / (hi - lo) * (len(RAMP) - 1) if hi > lo else np.zeros_like(logs)
    k = np.minimum(t.astype(int), len(RAMP) - 2)
    f = t - k
    ramp = np.array(RAMP, dtype=float)
    for band in range(3):
        rgba[band][present] = np.round(ramp[k, band] * (1 - f) + ramp[k + 1, band] * f)
    rgba[3][present] = 255
    return rgba


def _write_preview(cog: Path, png: Path) -> None:
    with rasterio.open(cog) as src:
        scale = max(src.width, src.height) / PREVIEW_MAX_PX
        shape = (max(1, round(src.height / max(scale, 1))),
                 max(1, round(src.width / max(scale, 1))))
        values = src.read(1, out_shape=shape, resampling=Resampling.nearest)
    tmp = png.with_name(f".{png.name}.{os.getpid()}.tmp")
    with warnings.catch_warnings():  # a plain picture: no georeferencing meant
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(
                tmp, "w", driver="PNG", width=shape[1], height=shape[0], count=4,
                dtype="uint8") as dst:
            dst.write(_colours(values))
    os.replace(tmp, png)


def surface_bounds(path: Path) -> list[float]:
    with rasterio.open(path) as src:
        b = src.bounds
        return [b.left, b.bottom, b.right, b.top]
