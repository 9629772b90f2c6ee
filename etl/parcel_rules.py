"""Validation rules for delivered cadastral parcels: turn a read file into rows to stage.

Each rule names the feature, field and reason of every row it rejects. The order is
attributes, geometry, CRS/reprojection, location, area, then duplicate keys, so a row
reports every independent problem it has, not only the first.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from etl.fieldmap import FieldMapping
from etl.geometry import (
    area_issues,
    bounds_within,
    check_polygons,
    inside_vietnam,
    metric_areas,
    transform,
)
from etl.reference import Reference
from etl.report import Issue, LoadError
from etl.values import is_blank, parse_code, parse_date, parse_number, parse_positive_int

WGS84 = CRS.from_epsg(4326)
LAND_USE_SPLIT = re.compile(r"\s*[+,;/]\s*")
# District extents are bounding boxes of real boundaries; allow ~50 m for edge rounding.
EXTENT_MARGIN_DEG = 0.0005
MAX_TEXT = {"address": 500, "owner_name": 200, "owner_id_number": 20,
            "certificate_serial": 30}
STAGE_COLUMNS = [
    "feature_no", "province_code", "district_code", "commune_code", "sheet_no", "parcel_no",
    "area_m2", "computed_area_m2", "legal_area_m2", "land_use", "land_use_source",
    "address", "current_province_code", "current_commune_code", "source_srid", "wkb",
    "owner_name", "owner_id_number", "certificate_serial", "certificate_date",
]


@dataclass(frozen=True)
class Options:
    crs: str | None = None
    area_tolerance: float = 0.01


def resolve_crs(file: str, file_crs: CRS | None, stated: str | None) -> CRS:
    """The source CRS: the file's, or the stated one; both present must agree."""
    if stated:
        try:
            stated_crs = CRS.from_user_input(stated)
        except Exception as exc:
            raise LoadError(file, f"--crs {stated!r} is not a CRS PROJ knows: {exc}") from exc
        if file_crs is not None and not _same_crs(file_crs, stated_crs):
            raise LoadError(file, f"the file declares {file_crs.name} but --crs says "
                                  f"{stated_crs.name}; fix the .prj or drop --crs")
        return stated_crs
    if file_crs is None:
        raise LoadError(file, "no coordinate reference system (a Shapefile without .prj?); "
                              "state it, e.g. --crs EPSG:5897 for VN-2000 / TM-3 105°, "
                              "--crs EPSG:4326 for WGS84")
    return file_crs


def _same_crs(a: CRS, b: CRS) -> bool:
    ea, eb = a.to_epsg(min_confidence=70), b.to_epsg(min_confidence=70)
    if ea is not None and eb is not None:
        return ea == eb
    return a.equals(b, ignore_axis_order=True)


def _srid(crs: CRS) -> int:
    """EPSG code of the horizontal CRS (a GeoJSON with Z reads as EPSG:4979), 0 if none."""
    return crs.to_2d().to_epsg(min_confidence=70) or 0


class RowChecker:
    """Attribute rules, row by row (cheap next to geometry, and clearer as plain code)."""

    def __init__(self, ref: Reference) -> None:
        self.ref = ref
        self.issues: list[Issue] = []

    def reject(self, no: int, field: str, reason: str, value: object = None) -> None:
        self.issues.append(Issue(no, field, reason, None if is_blank(value) else str(value)))

    def repair(self, no: int, field: str, reason: str, value: object = None) -> None:
        self.issues.append(Issue(no, field, reason, None if is_blank(value) else str(value),
                                 severity="repair"))

    def required(self, no: int, field: str, value: object, parse, *args):  # noqa: ANN001
        if is_blank(value):
            self.reject(no, field, "required value is missing")
            return None
        try:
            return parse(value, *args)
        except ValueError as exc:
            self.reject(no, field, str(exc), value)
            return None

    def optional(self, no: int, field: str, value: object, parse):  # noqa: ANN001
        if is_blank(value):
            return None
        try:
            return parse(value)
        except ValueError as exc:
            self.reject(no, field, str(exc), value)
            return None

    def text(self, no: int, field: str, value: object) -> str | None:
        if is_blank(value):
            return None
        out = str(value).strip()
        limit = MAX_TEXT.get(field)
        if limit and len(out) > limit:
            self.reject(no, field, f"longer than {limit} characters", out[:40] + "...")
            return None
        return out

    def land_use(self, no: int, value: object) -> tuple[str | None, str | None]:
        if is_blank(value):
            self.reject(no, "land_use", "required value is missing")
            return None, None
        source = str(value).strip().upper()
        codes: list[str] = []
        for code in (c for c in LAND_USE_SPLIT.split(source) if c):
            if code not in self.ref.land_use:
                self.reject(no, "land_use", f"unknown land-use code {code!r}", source)
                return None, source
            replacement = self.ref.land_use[code]
            if replacement:
                self.repair(no, "land_use",
                            f"superseded 2018 code {code} mapped to {replacement}", source)
                code = replacement
            if code not in codes:
                codes.append(code)
        if not codes:
            self.reject(no, "land_use", "required value is missing")
            return None, source
        return "+".join(codes), source


def prepare_parcels(frame: pd.DataFrame, file: str, source_crs: CRS, ref: Reference,
                    mapping: FieldMapping, options: Options
                    ) -> tuple[pd.DataFrame, list[Issue]]:
    """Validate a file's features; return (rows to stage, issues)."""
    attrs = mapping.select(frame, file)
    n = len(frame)
    feature_nos = np.arange(1, n + 1)
    rows = RowChecker(ref)
    records: list[dict] = []
    for i, rec in enumerate(attrs.to_dict("records")):
        no = i + 1
        commune_code = rows.required(no, "commune_code", rec.get("commune_code"),
                                     parse_code, 5)
        commune = ref.communes.get(commune_code) if commune_code else None
        if commune_code and commune is None:
            rows.reject(no, "commune_code", "not a commune code of the GSO catalogue "
                                            "(pre-2025 units)", commune_code)
        land_use, land_use_source = rows.land_use(no, rec.get("land_use"))
        area = rows.required(no, "area_m2", rec.get("area_m2"), parse_number)
        if area is not None and area <= 0:
            rows.reject(no, "area_m2", "must be greater than 0", rec.get("area_m2"))
            area = None
        owner_name = rows.text(no, "owner_name", rec.get("owner_name"))
        owner_id = rows.text(no, "owner_id_number", rec.get("owner_id_number"))
        serial = rows.text(no, "certificate_serial", rec.get("certificate_serial"))
        if (owner_id or serial) and not owner_name:
            rows.reject(no, "owner_name", "an ID number or certificate is given without "
                                          "the owner's name")
        records.append({
            "feature_no": no,
            "commune_code": commune_code,
            "district_code": commune.district_code if commune else None,
            "province_code": commune.province_code if commune else None,
            "current_province_code": commune.current_province_code if commune else None,
            "current_commune_code": commune.current_commune_code if commune else None,
            "sheet_no": rows.required(no, "sheet_no", rec.get("sheet_no"), parse_positive_int),
            "parcel_no": rows.required(no, "parcel_no", rec.get("parcel_no"),
                                       parse_positive_int),
            "area_m2": round(area, 1) if area is not None else None,
            "legal_area_m2": rows.optional(no, "legal_area_m2", rec.get("legal_area_m2"),
                                           parse_number),
            "land_use": land_use,
            "land_use_source": land_use_source,
            "address": rows.text(no, "address", rec.get("address")),
            "owner_name": owner_name,
            "owner_id_number": owner_id,
            "certificate_serial": serial,
            "certificate_date": rows.optional(no, "certificate_date",
                                              rec.get("certificate_date"), parse_date),
        })
    out = pd.DataFrame.from_records(records, columns=[c for c in STAGE_COLUMNS
                                                      if c not in ("wkb", "computed_area_m2",
                                                                   "source_srid")])
    issues = rows.issues

    # Geometry: validity and type in the source CRS (repairs keep the source's precision).
    geoms, geom_ok, geom_issues = check_polygons(np.asarray(frame.geometry.values, dtype=object),
                                                 feature_nos)
    issues += geom_issues

    # Reproject to the storage CRS and check the location.
    wgs = np.full(n, None, dtype=object)
    wgs[geom_ok] = transform(geoms[geom_ok], source_crs, WGS84)
    located = geom_ok.copy()
    if geom_ok.any():
        inside_vn, vn_issues = inside_vietnam(wgs, geom_ok, feature_nos, source_crs)
        issues += vn_issues
        located &= inside_vn
        district = out["district_code"].to_numpy()
        for code in pd.unique(district[located & pd.notna(district)]):
            box = ref.district_extents.get(code)
            if box is None:
                continue
            sel = np.flatnonzero(located & (district == code))
            for i in sel[~bounds_within(wgs[sel], box, EXTENT_MARGIN_DEG)]:
                issues.append(Issue(int(feature_nos[i]), "geometry",
                                    f"parcel lies outside district {code} (its commune "
                                    f"{out.at[i, 'commune_code']}'s district)"))
                located[i] = False

    # Area in the province's official TM-3 CRS vs the stated area.
    computed = np.full(n, np.nan)
    province = out["province_code"].to_numpy()
    for code in pd.unique(province[located & pd.notna(province)]):
        sel = np.flatnonzero(located & (province == code))
        computed[sel] = metric_areas(geoms[sel], wgs[sel], source_crs,
                                     ref.province_epsg.get(code))
    stated = out["area_m2"].to_numpy(dtype=float, na_value=np.nan)
    issues += area_issues(computed, stated, located, feature_nos, options.area_tolerance)

    # Duplicate natural keys within the file: all copies are rejected (which is right?).
    keys: dict[tuple, list[int]] = defaultdict(list)
    for rec in out[["commune_code", "sheet_no", "parcel_no", "feature_no"]].itertuples(
            index=False):
        if None not in rec[:3] and not any(pd.isna(v) for v in rec[:3]):
            keys[tuple(rec[:3])].append(int(rec[3]))
    for key, nos in keys.items():
        if len(nos) > 1:
            for no in nos:
                others = ", ".join(str(o) for o in nos if o != no)
                issues.append(Issue(no, "parcel_no",
                                    f"duplicate key commune {key[0]} sheet {key[1]} parcel "
                                    f"{key[2]} (also feature {others})"))

    out["computed_area_m2"] = np.round(computed, 1)
    out["source_srid"] = _srid(source_crs)
    out["wkb"] = None
    has_geom = located & ~np.isnan(computed)
    out.loc[has_geom, "wkb"] = shapely.to_wkb(shapely.set_srid(wgs[has_geom], 4326), hex=True,
                                              include_srid=True)
    rejected = {i.feature_no for i in issues if i.severity == "reject"}
    keep = ~out["feature_no"].isin(rejected)
    return out.loc[keep, STAGE_COLUMNS].reset_index(drop=True), issues
