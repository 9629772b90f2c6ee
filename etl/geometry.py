"""Geometry checks and repairs shared by every polygon loader.

Vectorised with shapely 2 so a million features cost seconds, not minutes. A repair is
made only when it is unambiguous (dropping Z/M, a make_valid that keeps the area) and is
always reported; anything else rejects the feature with shapely's reason.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from etl.report import Issue

WGS84 = CRS.from_epsg(4326)
# Mainland, Hoàng Sa and Trường Sa: lon 102.1-117.9 E, lat 6.0-23.5 N (degrees, WGS84).
VIETNAM_BOUNDS = (102.1, 6.0, 117.9, 23.5)
# District extents are bounding boxes of real boundaries; allow ~50 m for edge rounding.
EXTENT_MARGIN_DEG = 0.0005
POLYGONAL = {"Polygon", "MultiPolygon"}
POLYGONAL_IDS = [3, 6]  # shapely.get_type_id of Polygon, MultiPolygon
# make_valid may only move area by this share and still count as an unambiguous repair.
REPAIR_AREA_TOLERANCE = 1e-6


def check_polygons(geoms: np.ndarray, feature_nos: np.ndarray, field: str = "geometry",
                   *, multi: bool = True) -> tuple[np.ndarray, np.ndarray, list[Issue]]:
    """Return (2-D MultiPolygons, ok mask, issues) for an array of shapely geometries.

    ``multi=False`` leaves valid Polygons as they are: a loader that writes them out a
    chunk at a time (parcels) promotes them there, so a million-feature file never holds
    a second copy of every geometry.
    """
    issues: list[Issue] = []
    out = np.array(geoms, dtype=object)
    ok = np.ones(len(out), dtype=bool)

    missing = shapely.is_missing(out) | shapely.is_empty(out)
    for i in np.flatnonzero(missing):
        issues.append(Issue(int(feature_nos[i]), field, "geometry is empty or missing"))
    ok &= ~missing

    # Type ids in one call (a name per feature is a Python call each); names for the
    # wrong ones only.
    wrong = ok & ~np.isin(shapely.get_type_id(out), POLYGONAL_IDS)
    for i in np.flatnonzero(wrong):
        issues.append(Issue(int(feature_nos[i]), field,
                            f"{out[i].geom_type} where a polygon belongs"))
    ok &= ~wrong

    has_z = ok & shapely.has_z(out)
    if has_z.any():
        out[has_z] = shapely.force_2d(out[has_z])
        for i in np.flatnonzero(has_z):
            issues.append(Issue(int(feature_nos[i]), field,
                                "3-D coordinates: Z dropped", severity="repair"))

    invalid = ok & ~shapely.is_valid(np.where(ok, out, None))
    for i in np.flatnonzero(invalid):
        reason = shapely.is_valid_reason(out[i])
        fixed = shapely.make_valid(out[i])
        polygonal = shapely.get_type_id(fixed) in (3, 6)  # Polygon, MultiPolygon
        area, fixed_area = out[i].area, fixed.area
        same_area = area > 0 and abs(fixed_area - area) <= REPAIR_AREA_TOLERANCE * area
        if polygonal and same_area:
            out[i] = fixed
            issues.append(Issue(int(feature_nos[i]), field,
                                f"invalid geometry repaired ({reason})", severity="repair"))
        else:
            ok[i] = False
            issues.append(Issue(int(feature_nos[i]), field,
                                f"invalid geometry ({reason}); repair would be ambiguous"))

    single = ok & (shapely.get_type_id(np.where(ok, out, None)) == 3)
    if multi and single.any():  # each Polygon its own MultiPolygon, in one call
        out[single] = shapely.multipolygons(out[single], indices=np.arange(single.sum()))
    return out, ok, issues


_transformers = threading.local()


def transformer(src: CRS, dst: CRS) -> Transformer:
    """The (always_xy) transformer for a CRS pair, made once per thread.

    Making one costs PROJ ~90 ms of operation search, more than reprojecting a whole
    district; an API write (a one-parcel delivery) paid it on every request. Per thread,
    because a PROJ context must not be shared between threads doing work at once.
    """
    cache = getattr(_transformers, "cache", None)
    if cache is None:
        cache = _transformers.cache = {}
    key = (src.to_wkt(), dst.to_wkt())
    tr = cache.get(key)
    if tr is None:
        tr = cache[key] = Transformer.from_crs(src, dst, always_xy=True)
    return tr


def transform(geoms: np.ndarray, src: CRS, dst: CRS) -> np.ndarray:
    """Reproject with PROJ's best operation (EPSG's VN-2000 -> WGS84 7-parameter shift)."""
    if src == dst:
        return geoms
    tr = transformer(src, dst)
    return shapely.transform(geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0],
                                                                            xy[:, 1])))


def bounds_within(geoms: np.ndarray, box: tuple[float, float, float, float],
                  margin: float = 0.0) -> np.ndarray:
    b = shapely.bounds(geoms)
    return ((b[:, 0] >= box[0] - margin) & (b[:, 1] >= box[1] - margin)
            & (b[:, 2] <= box[2] + margin) & (b[:, 3] <= box[3] + margin))


def inside_vietnam(wgs: np.ndarray, ok: np.ndarray, feature_nos: np.ndarray,
                   source_crs: CRS) -> tuple[np.ndarray, list[Issue]]:
    """Mask of the ``ok`` features (WGS84) inside Vietnam, and an issue for each outside.

    When most features fall outside, the CRS is the likely culprit: say so once.
    """
    n = len(wgs)
    inside = np.zeros(n, dtype=bool)
    issues: list[Issue] = []
    if not ok.any():
        return inside, issues
    inside[ok] = bounds_within(wgs[ok], VIETNAM_BOUNDS)
    outside = np.flatnonzero(ok & ~inside)
    for i in outside:
        x, y = shapely.get_coordinates(wgs[i])[0]
        issues.append(Issue(int(feature_nos[i]), "geometry",
                            f"coordinates outside Vietnam after reprojecting from "
                            f"{source_crs.name} (first point {x:.5f}, {y:.5f}); is the "
                            f"CRS right?"))
    if len(outside) > n // 2:
        issues.append(Issue(0, "geometry",
                            f"{len(outside)} of {n} features fall outside Vietnam: the "
                            f"declared CRS ({source_crs.name}) is probably wrong"))
    return inside, issues


def locate(geoms: np.ndarray, ok: np.ndarray, feature_nos: np.ndarray, source_crs: CRS,
           districts: np.ndarray, extents: dict[str, tuple[float, float, float, float]],
           outside: Callable[[int, str], str]) -> tuple[np.ndarray, np.ndarray, list[Issue]]:
    """Reproject the valid geometries to WGS84 and check where they lie: in Vietnam, and
    within the extent of each feature's district (``districts``, where its extent is
    known, give or take ``EXTENT_MARGIN_DEG``). Returns (WGS84 geometries, located,
    issues); ``outside(index, district)`` words the reject of a feature outside it."""
    wgs = np.full(len(geoms), None, dtype=object)
    wgs[ok] = transform(geoms[ok], source_crs, WGS84)
    located = ok.copy()
    issues: list[Issue] = []
    if not ok.any():
        return wgs, located, issues
    inside_vn, issues = inside_vietnam(wgs, ok, feature_nos, source_crs)
    located &= inside_vn
    for code in pd.unique(districts[located & pd.notna(districts)]):
        box = extents.get(code)
        if box is None:
            continue
        sel = np.flatnonzero(located & (districts == code))
        for i in sel[~bounds_within(wgs[sel], box, EXTENT_MARGIN_DEG)]:
            issues.append(Issue(int(feature_nos[i]), "geometry", outside(int(i), code)))
            located[i] = False
    return wgs, located, issues


def metric_areas(geoms: np.ndarray, wgs: np.ndarray, source_crs: CRS,
                 epsg: int | None) -> np.ndarray:
    """Areas (m²) in the province's TM-3 CRS ``epsg`` (the source CRS when unknown).

    A file already in that CRS is measured as delivered; otherwise the WGS84 geometry is
    projected, so every loader measures the same way the database will.
    """
    metric = CRS.from_epsg(epsg) if epsg else source_crs
    src = geoms if metric == source_crs else transform(wgs, WGS84, metric)
    return shapely.area(src)


def area_issues(computed: np.ndarray, stated: np.ndarray, mask: np.ndarray,
                feature_nos: np.ndarray, limits: np.ndarray, rule: Callable[[int], str],
                field: str = "area_m2") -> list[Issue]:
    """Stated area vs the geometry's: a reject where they differ by more than ``limits``
    (m², per feature); ``rule(index)`` says which limit that was and why."""
    checkable = mask & ~np.isnan(stated) & ~np.isnan(computed)
    diff = np.zeros(len(computed))
    diff[checkable] = np.abs(computed[checkable] - stated[checkable])
    return [Issue(int(feature_nos[i]), field,
                  f"stated area {stated[i]:,.1f} m² differs from the geometry's "
                  f"{computed[i]:,.1f} m² by {diff[i]:,.2f} m², more than {rule(int(i))}",
                  str(stated[i]))
            for i in np.flatnonzero(checkable & (diff > limits))]
