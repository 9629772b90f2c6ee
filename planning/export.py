"""Write the overlay for office use: a GeoPackage for QGIS, or a CSV for spreadsheets.

Both hold the same rows and columns as the OGC API process (``overlay.COLUMNS``); the CSV
has no geometry column (no WKT), and is UTF-8 with a byte-order mark so spreadsheet
programs show Vietnamese text correctly.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sqlalchemy.engine import Connection, Engine

from planning.overlay import COLUMNS, affected_parcels

LAYER = "affected_parcels"
FORMATS = {".gpkg": "GPKG", ".csv": "CSV"}


def write_overlay(db: Engine | Connection, plan_code: str, out: Path,
                  district: str | None = None, min_share: float = 0.0) -> int:
    """Write the overlay rows to ``out`` (.gpkg or .csv); return the number of rows."""
    kind = FORMATS.get(out.suffix.lower())
    if kind is None:
        raise ValueError(f"{out.name}: write a .gpkg or a .csv file")
    geometry = "wkb" if kind == "GPKG" else None
    rows = affected_parcels(db, plan_code, district, min_share, geometry=geometry)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    if kind == "CSV":
        with out.open("w", newline="", encoding="utf-8-sig") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            writer.writerows([row[c] for c in COLUMNS] for row in rows)
        return len(rows)
    _write_gpkg(out, rows)
    return len(rows)


def _write_gpkg(out: Path, rows: list[dict]) -> None:
    """Typed columns (integers, reals, booleans, text) through GDAL, geometry as WKB."""
    from pyogrio.raw import write  # GDAL only when a GeoPackage is asked for

    def column(name: str) -> np.ndarray:
        values = [r[name] for r in rows]
        sample = next((v for v in values if v is not None), "")
        kind = {bool: bool, int: np.int64, float: np.float64}.get(type(sample), object)
        return np.array(values, dtype=kind)

    write(out, np.array([r["geometry"] for r in rows], dtype=object),
          [column(c) for c in COLUMNS], list(COLUMNS), layer=LAYER, driver="GPKG",
          geometry_type="MultiPolygon", crs="EPSG:4326")
