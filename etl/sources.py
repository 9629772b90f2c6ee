"""Open a delivered vector file: find its parts, hash it, pick the layer, read it.

A Shapefile is several files; its identity (for idempotency and the load record) is the
hash of all of them, so a changed .prj or .dbf is a different delivery.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pyogrio
from pyproj import CRS

from etl.report import LoadError

SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
PREFERRED_LAYERS = ("thua_dat", "thuadat", "parcels", "parcel")


def dataset_files(path: Path) -> list[Path]:
    """The files that make up the dataset at ``path`` (all Shapefile parts present)."""
    if path.suffix.lower() != ".shp":
        return [path]
    parts = []
    for ext in SHAPEFILE_PARTS:
        for candidate in (path.with_suffix(ext), path.with_suffix(ext.upper())):
            if candidate.exists():
                parts.append(candidate)
                break
    return parts


def file_sha256(path: Path, extra: Sequence[Path] = ()) -> str:
    """Hash of the dataset's files, plus ``extra`` files that belong to the delivery (a
    plan's ``.plan.yaml`` sidecar: changed metadata is a different delivery)."""
    digest = hashlib.sha256()
    for part in [*dataset_files(path), *extra]:
        digest.update(part.suffix.lower().encode())
        with part.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Source:
    path: Path
    layer: str | None
    frame: gpd.GeoDataFrame
    crs: CRS | None
    sha256: str


def _choose_layer(path: Path, layer: str | None) -> str | None:
    layers = pyogrio.list_layers(path)
    names = [str(row[0]) for row in layers]
    if layer is not None:
        if layer not in names:
            raise LoadError(path, f"no layer {layer!r}; layers are: {', '.join(names)}")
        return layer
    if len(names) <= 1:
        return names[0] if names else None
    polygonal = [str(n) for n, g in layers if g and "Polygon" in str(g)]
    for preferred in PREFERRED_LAYERS:
        if preferred in names:
            return preferred
    if len(polygonal) == 1:
        return polygonal[0]
    raise LoadError(path, f"several layers ({', '.join(names)}); choose one with --layer")


def open_source(path: Path, *, layer: str | None = None,
                encoding: str | None = None) -> Source:
    """Read the whole layer. Raises LoadError for anything that makes the file unusable."""
    if not path.exists():
        raise LoadError(path, "file not found")
    if path.suffix.lower() == ".shp":
        have = {p.suffix.lower() for p in dataset_files(path)}
        missing = [ext for ext in (".shx", ".dbf") if ext not in have]
        if missing:
            raise LoadError(path, f"Shapefile incomplete: {' and '.join(missing)} missing "
                                  "next to the .shp")
    sha = file_sha256(path)
    try:
        chosen = _choose_layer(path, layer)
        frame = pyogrio.read_dataframe(path, layer=chosen, encoding=encoding)
    except LoadError:
        raise
    except Exception as exc:  # pyogrio/GDAL errors: the file itself is broken
        raise LoadError(path, f"cannot be read: {exc}") from exc
    return Source(path, chosen, frame, frame.crs, sha)
