"""Validate the geometries that come with a price table: road segments and value zones.

Segment features (GeoPackage / Shapefile, any CRS PROJ knows) are matched to the table's
rows by road name + from + to, normalised (``valuation.rules.segment_key``). Rejected, with
file, feature number, field and reason: missing/empty or non-line geometry, coordinates
outside Vietnam or outside the table's province, a segment no row of the table prices,
the same segment twice, and segments of the same road that overlap (measured in the
province's TM-3: more than ``OVERLAP_MIN_M`` of shared length). Z is dropped and reported.

Value zones are polygons with a zone code, land type, price and standard parcel.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import shapely
from pyproj import CRS

from cadastre.loader import PARCEL_LAYERS
from etl.fieldmap import FieldMapping
from etl.geometry import WGS84, bounds_within, check_polygons, inside_vietnam, transform
from etl.report import Issue
from etl.rowcheck import resolve_crs
from etl.sources import open_source
from etl.values import is_blank, parse_code
from valuation import MAPPINGS
from valuation.rules import MAX_TEXT, Context, parse_price, segment_key, split_segment

OVERLAP_MIN_M = 1.0  # segments of one road may touch end to end, not share a stretch
PROVINCE_MARGIN_DEG = 0.005  # ~500 m: district extents are bounding boxes
PARCEL_REF = re.compile(r"^\d{5}\.\d+\.\d+$")
LINEAR = {"LineString", "MultiLineString"}
MAX_ZONE_CODE = 50


@dataclass(frozen=True)
class Extents:
    """Bounding boxes of the province's districts (where known), for location checks."""

    districts: dict[str, tuple[float, float, float, float]]

    @property
    def province(self) -> tuple[float, float, float, float] | None:
        if not self.districts:
            return None
        boxes = np.array(list(self.districts.values()))
        return (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max())

    def district_of(self, point: shapely.Point) -> str | None:
        for code, (x0, y0, x1, y1) in sorted(self.districts.items()):
            if x0 <= point.x <= x1 and y0 <= point.y <= y1:
                return code
        return None


@dataclass
class Features:
    """Validated features keyed by their natural key, and what was found wrong."""

    by_key: dict[str, dict] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    read: int = 0
    srid: int | None = None


def _read(path: Path, layer: str | None, crs: str | None, mapping: str,
          encoding: str | None = None) -> tuple[list[dict], np.ndarray, CRS, list[Issue]]:
    """Records, geometries, CRS, and the whole-file repairs made while reading (named
    ``<file>!<field>`` like every price-table issue)."""
    # as before the domains were split: a several-layer file prefers a parcel-named one
    source = open_source(path, layer=layer, encoding=encoding, preferred_layers=PARCEL_LAYERS)
    # --crs names the CRS of the geometry files that have none (segments and zones may
    # come in different CRSs): a file declaring its own keeps it.
    src_crs = resolve_crs(path.name, source.crs, crs if source.crs is None else None)
    attrs = FieldMapping.load(mapping, MAPPINGS).select(source.frame, path.name)
    return (attrs.to_dict("records"), np.asarray(source.frame.geometry.values, dtype=object),
            src_crs, [replace(i, field=f"{path.name}!{i.field}") for i in source.issues])


def _located(wgs: np.ndarray, ok: np.ndarray, nos: np.ndarray, src: CRS, extents: Extents,
             ctx: Context, file: str, issues: list[Issue]) -> np.ndarray:
    inside, vn = inside_vietnam(wgs, ok, nos, src)
    issues += [replace(i, field=f"{file}!geometry") for i in vn]
    box = extents.province
    if box is not None and inside.any():
        within = np.zeros(len(wgs), dtype=bool)
        within[inside] = bounds_within(wgs[inside], box, PROVINCE_MARGIN_DEG)
        for i in np.flatnonzero(inside & ~within):
            x, y = shapely.get_coordinates(wgs[i])[0]
            issues.append(Issue(int(nos[i]), f"{file}!geometry",
                                f"outside province {ctx.province_code} (first point "
                                f"{x:.5f}, {y:.5f}): the table prices only its province"))
        inside &= within
    return inside


def _district(rec: dict, geom: shapely.Geometry, no: int, file: str, ctx: Context,
              extents: Extents, issues: list[Issue]) -> tuple[bool, str | None]:
    raw = rec.get("district_code")
    if is_blank(raw):
        return True, extents.district_of(shapely.point_on_surface(geom)
                                         if geom.geom_type.endswith("Polygon")
                                         else shapely.line_interpolate_point(
                                             geom, 0.5, normalized=True))
    try:
        code = parse_code(raw, 3)
    except (ValueError, TypeError):
        issues.append(Issue(no, f"{file}!district_code", "not a 3-digit district code",
                            str(raw)))
        return False, None
    if code not in set(ctx.districts.values()):
        issues.append(Issue(no, f"{file}!district_code", f"district {code} is not in "
                            f"province {ctx.province_code}", str(raw)))
        return False, None
    return True, code


def prepare_segments(path: Path, ctx: Context, priced_keys: set[str], epsg: int | None,
                     extents: Extents, *, layer: str | None = None,
                     crs: str | None = None, encoding: str | None = None) -> Features:
    """Validate a segment geometry file against the keys the table's rows price."""
    out = Features()
    records, geoms, src, out.issues = _read(path, layer, crs, "price_segments", encoding)
    file = path.name
    out.read = len(records)
    out.srid = src.to_2d().to_epsg(min_confidence=70)
    nos = np.arange(1, len(records) + 1)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    for i in np.flatnonzero(~ok):
        out.issues.append(Issue(int(nos[i]), f"{file}!geometry", "geometry is empty or missing"))
    for i in np.flatnonzero(ok):
        if geoms[i].geom_type not in LINEAR:
            out.issues.append(Issue(int(nos[i]), f"{file}!geometry",
                                    f"{geoms[i].geom_type} where a road line belongs"))
            ok[i] = False
    has_z = ok & shapely.has_z(np.where(ok, geoms, None))
    for i in np.flatnonzero(has_z):
        geoms[i] = shapely.force_2d(geoms[i])
        out.issues.append(Issue(int(nos[i]), f"{file}!geometry", "3-D coordinates: Z dropped",
                                severity="repair"))
    wgs = np.array(geoms, dtype=object)
    wgs[ok] = transform(geoms[ok], src, WGS84)
    ok &= _located(wgs, ok, nos, src, extents, ctx, file, out.issues)

    seen: dict[str, list[int]] = defaultdict(list)
    by_base: dict[str, list[str]] = defaultdict(list)
    for k in sorted(priced_keys):
        if "#" not in k:  # rows for unnamed roads by width have no geometry
            by_base[k.split("@", 1)[0]].append(k)
    for i in np.flatnonzero(ok):
        rec, no = records[i], int(nos[i])
        road = None if is_blank(rec.get("road_name")) else " ".join(str(rec["road_name"]).split())
        if road is None:
            out.issues.append(Issue(no, f"{file}!road_name", "road name missing"))
            continue
        if _too_long(rec, no, file, out.issues):
            continue
        start, end = (None if is_blank(rec.get(k)) else " ".join(str(rec[k]).split())
                      for k in ("from_desc", "to_desc"))
        if start is None and end is None and not is_blank(rec.get("segment")):
            start, end = split_segment(" ".join(str(rec["segment"]).split()))
        commune = None if is_blank(rec.get("commune_code")) else str(rec["commune_code"]).strip()
        key, why = _match_key(segment_key(road, start, end), commune, by_base)
        if key is None:
            out.issues.append(Issue(no, f"{file}!road_name", why,
                                    f"{road} | {start or ''} | {end or ''}"))
            continue
        good, district = _district(rec, wgs[i], no, file, ctx, extents, out.issues)
        if not good:
            continue
        seen[key].append(i)
        out.by_key[key] = {"feature_no": no, "district_code": district, "geom": wgs[i],
                           "label": f"{road} | {start or ''} | {end or ''}"}
    for key, idx in seen.items():
        if len(idx) > 1:
            for i in idx:
                others = ", ".join(str(int(nos[j])) for j in idx if j != i)
                out.issues.append(Issue(int(nos[i]), f"{file}!road_name",
                                        f"the same segment is drawn twice (also feature "
                                        f"{others})", out.by_key[key]["label"]))
            del out.by_key[key]
    _overlaps(out, epsg, file)
    for item in out.by_key.values():
        item["wkb"] = _ewkb(shapely.multilinestrings([item["geom"]])
                            if item["geom"].geom_type == "LineString" else item["geom"])
    return out


def _match_key(base: str, commune: str | None, by_base: dict[str, list[str]]
               ) -> tuple[str | None, str]:
    """The table row key a feature draws: road|from|to, with its commune where the table
    lists the road under a commune's heading (the feature's commune decides between
    several; without one, only a road listed once matches)."""
    keys = by_base.get(base, [])
    if commune:
        exact = [k for k in keys if k in (f"{base}@{commune}", base)]
        if exact:
            return exact[0], ""
    if len(keys) == 1:
        return keys[0], ""
    if not keys:
        return None, "no row of the table prices this segment (road, from, to)"
    places = ", ".join(k.partition("@")[2] or "-" for k in keys)
    return None, (f"several rows price this segment, under communes {places}: give the "
                  "feature's commune (MaXa)")


def _too_long(rec: dict, no: int, file: str, issues: list[Issue]) -> bool:
    """Reject a feature whose labels are longer than the table's rows may be."""
    long = False
    for name, limit in MAX_TEXT.items():
        value = rec.get(name)
        if not is_blank(value) and len(str(value)) > limit:
            issues.append(Issue(no, f"{file}!{name}", f"longer than {limit} characters",
                                str(value)[:40] + "..."))
            long = True
    return long


def _overlaps(out: Features, epsg: int | None, file: str) -> None:
    """Segments of the same road that share more than OVERLAP_MIN_M: both rejected."""
    by_road: dict[str, list[str]] = defaultdict(list)
    for key in out.by_key:
        by_road[key.split("|", 1)[0]].append(key)
    metric = CRS.from_epsg(epsg) if epsg else None
    bad: set[str] = set()
    for keys in by_road.values():
        if len(keys) < 2:
            continue
        geoms = np.array([out.by_key[k]["geom"] for k in keys], dtype=object)
        if metric is not None:
            geoms = transform(geoms, WGS84, metric)
        for a in range(len(keys)):
            for b in range(a + 1, len(keys)):
                shared = shapely.length(shapely.intersection(geoms[a], geoms[b]))
                if metric is None:
                    shared *= 111_000  # degrees -> metres, near enough for a threshold
                if shared > OVERLAP_MIN_M:
                    for this, other in ((keys[a], keys[b]), (keys[b], keys[a])):
                        out.issues.append(Issue(
                            out.by_key[this]["feature_no"], f"{file}!geometry",
                            f"overlaps segment feature {out.by_key[other]['feature_no']} "
                            f"({out.by_key[other]['label']}) of the same road by "
                            f"{shared:,.1f} m", out.by_key[this]["label"]))
                    bad |= {keys[a], keys[b]}
    for key in bad:
        del out.by_key[key]


def _ewkb(geom: shapely.Geometry) -> str:
    return shapely.to_wkb(shapely.set_srid(geom, 4326), hex=True, include_srid=True)


def prepare_zones(path: Path, ctx: Context, extents: Extents, *, layer: str | None = None,
                  crs: str | None = None, encoding: str | None = None) -> Features:
    """Validate value zones (vùng giá trị): polygon, code, land type, price, standard parcel."""
    out = Features()
    records, geoms, src, out.issues = _read(path, layer, crs, "price_zones", encoding)
    file = path.name
    out.read = len(records)
    out.srid = src.to_2d().to_epsg(min_confidence=70)
    nos = np.arange(1, len(records) + 1)
    fixed, ok, issues = check_polygons(geoms, nos, field=f"{file}!geometry")
    out.issues += issues
    wgs = np.array(fixed, dtype=object)
    wgs[ok] = transform(fixed[ok], src, WGS84)
    ok &= _located(wgs, ok, nos, src, extents, ctx, file, out.issues)
    seen: dict[str, list[int]] = defaultdict(list)
    for i in np.flatnonzero(ok):
        rec, no = records[i], int(nos[i])
        code = None if is_blank(rec.get("zone_code")) else str(rec["zone_code"]).strip()
        land = None if is_blank(rec.get("land_type")) else str(rec["land_type"]).strip().upper()
        problems = len(out.issues)
        if code is None:
            out.issues.append(Issue(no, f"{file}!zone_code", "zone code missing"))
        elif len(code) > MAX_ZONE_CODE:
            out.issues.append(Issue(no, f"{file}!zone_code", f"longer than {MAX_ZONE_CODE} "
                                    "characters", code[:40] + "..."))
        if land is None:
            out.issues.append(Issue(no, f"{file}!land_type", "land type missing"))
        elif land not in ctx.land_types:
            out.issues.append(Issue(no, f"{file}!land_type", f"unknown land type {land!r}",
                                    land))
        price = None
        if is_blank(rec.get("price")):
            out.issues.append(Issue(no, f"{file}!price", "price missing"))
        else:
            try:
                price = parse_price(rec.get("price"), 1)
            except ValueError as exc:
                out.issues.append(Issue(no, f"{file}!price", str(exc), str(rec.get("price"))))
        ref = None if is_blank(rec.get("standard_parcel")) else str(rec["standard_parcel"])
        if ref is not None and not PARCEL_REF.match(ref.strip()):
            out.issues.append(Issue(no, f"{file}!standard_parcel", "standard parcel must be "
                                    "commune.sheet.parcel, e.g. 20215.3.12", ref))
        good, district = _district(rec, wgs[i], no, file, ctx, extents, out.issues)
        if len(out.issues) > problems or not good:
            continue
        seen[code].append(i)
        out.by_key[code] = {"feature_no": no, "land_type": land, "price": price,
                            "standard_parcel": ref.strip() if ref else None,
                            "district_code": district, "wkb": _ewkb(wgs[i])}
    for code, idx in seen.items():
        if len(idx) > 1:
            for i in idx:
                out.issues.append(Issue(int(nos[i]), f"{file}!zone_code",
                                        "the same zone code twice", code))
            del out.by_key[code]
    return out
