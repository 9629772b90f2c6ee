"""Validation rules for a delivered plan: its metadata, then its zones (ô quy hoạch).

The metadata (code, type, unit, period, scale, decision) comes from the command line and the
delivery's ``.plan.yaml`` sidecar; a problem there is a whole-file ``LoadError``. Zones are
checked feature by feature like parcels (every reject names file, feature, field and reason):
attributes, geometry, CRS, location in Vietnam (in the plan's district: on the stage, by the
district's boundary where one is loaded, ``cadastre.location``), stated vs computed
area, duplicate zone codes, and finally overlaps between zones of the plan.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from cadastre.reference import Reference
from cadastre.rules import LAND_USE_SPLIT, ParcelChecker
from etl import sidecar
from etl.fieldmap import FieldMapping
from etl.geometry import (
    WGS84,
    area_issues,
    check_polygons,
    locate,
    metric_areas,
    transform,
)
from etl.report import Issue, LoadError
from etl.values import is_blank, parse_code, parse_date, parse_number

PLAN_TYPES = ("land_use_period", "land_use_annual", "zoning_1_2000", "detailed_1_500")
# Plan types whose name fixes the scale; the others state theirs (1/5000-1/50000).
SCALE_OF_TYPE = {"zoning_1_2000": 2000, "detailed_1_500": 500}
ADMIN_LEVELS = ("province", "district", "commune")
SIDECAR_KEYS = {"plan_code", "plan_type", "district", "district_code", "admin_level",
                "admin_code", "period", "scale", "decision_no", "decision_date",
                "approved_by", "title"}
PERIOD = re.compile(r"^\s*(\d{4})\s*(?:[-–—/]\s*(\d{4}))?\s*$")
MAX_ZONE_CODE = 50
MAX_FUNCTION = 300
STAGE_COLUMNS = ["feature_no", "district_code", "zone_code", "planned_use",
                 "planned_use_source", "function", "area_m2", "computed_area_m2",
                 "coverage_pct", "max_floors", "far", "wkb"]


@dataclass(frozen=True)
class Options:
    crs: str | None = None
    area_tolerance: float = 0.01
    # Zones of one plan may touch but not overlap: a shared edge digitised twice leaves
    # slivers, so an overlap counts when it exceeds max(1 m², 0.1% of the smaller zone).
    overlap_min_m2: float = 1.0
    overlap_share: float = 0.001


@dataclass(frozen=True)
class PlanMeta:
    """A plan's identity and approval, validated."""

    plan_code: str
    plan_type: str
    admin_level: str
    admin_code: str
    district_code: str
    province_code: str
    period_from: int | None
    period_to: int | None
    scale: int | None
    decision_no: str
    decision_date: date
    approved_by: str | None
    title: str | None

    def as_json(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, date) else v)
                for k, v in asdict(self).items()}


def find_sidecar(path: Path) -> Path | None:
    """``<file>.plan.yaml`` (e.g. ``x.gpkg.plan.yaml``) or ``<stem>.plan.yaml`` beside it."""
    return sidecar.find_sidecar(path, ".plan.yaml")


def read_sidecar(path: Path | None, file: str) -> dict:
    doc = sidecar.read_sidecar(path, file, SIDECAR_KEYS, "plan")
    if "district_code" in doc:
        doc.setdefault("district", doc.pop("district_code"))
    return doc


def parse_period(value: object) -> tuple[int | None, int | None]:
    """'2021-2030' -> (2021, 2030); '2025' or 2025 -> (2025, 2025); blank -> (None, None)."""
    if is_blank(value):
        return None, None
    match = PERIOD.match(str(value))
    if not match:
        raise ValueError(f"period {value!r} is not YYYY or YYYY-YYYY")
    start = int(match.group(1))
    end = int(match.group(2) or start)
    if not (1945 <= start <= end <= 2100):
        raise ValueError(f"period {value!r}: years must run forward, 1945-2100")
    return start, end


def plan_metadata(file: str, sidecar: dict, overrides: dict, ref: Reference) -> PlanMeta:
    """Merge sidecar and command-line values (the command line wins) and validate them."""
    given = {**sidecar, **{k: v for k, v in overrides.items() if not is_blank(v)}}
    problems: list[str] = []

    def text(key: str, required: bool = False, limit: int = 300) -> str | None:
        value = given.get(key)
        if is_blank(value):
            if required:
                problems.append(f"{key} is required (--{key.replace('_', '-')} or the "
                                f".plan.yaml sidecar)")
            return None
        out = str(value).strip()
        if len(out) > limit or any(ord(ch) < 32 for ch in out):
            problems.append(f"{key} {out[:40]!r} is too long or has control characters")
            return None
        return out

    plan_code = text("plan_code", required=True, limit=100)
    plan_type = text("plan_type", required=True)
    if plan_type and plan_type not in PLAN_TYPES:
        problems.append(f"plan_type {plan_type!r} is not one of {', '.join(PLAN_TYPES)}")
    admin_level = text("admin_level") or "district"
    if admin_level not in ADMIN_LEVELS:
        problems.append(f"admin_level {admin_level!r} is not one of {', '.join(ADMIN_LEVELS)}")
    district = _district(given, admin_level, ref, problems)
    admin_code = text("admin_code") or district
    try:
        period_from, period_to = parse_period(given.get("period"))
    except ValueError as exc:
        problems.append(str(exc))
        period_from = period_to = None
    if plan_type in ("land_use_period", "land_use_annual") and period_from is None:
        problems.append(f"a {plan_type} plan needs its period (e.g. 2021-2030, or the year)")
    if plan_type == "land_use_annual" and period_from != period_to:
        problems.append("an annual land-use plan covers one year (period YYYY)")
    scale = _scale(given.get("scale"), plan_type, problems)
    decision_no = text("decision_no", required=True, limit=100)
    decision_date = None
    if is_blank(given.get("decision_date")):
        problems.append("decision_date is required (--decision-date or the .plan.yaml "
                        "sidecar)")
    else:
        try:
            decision_date = parse_date(given["decision_date"])
        except ValueError as exc:
            problems.append(f"decision_date: {exc}")
    if problems:
        raise LoadError(file, "plan metadata: " + "; ".join(problems))
    province = next(c.province_code for c in ref.communes.values()
                    if c.district_code == district)
    return PlanMeta(plan_code, plan_type, admin_level, admin_code, district, province,
                    period_from, period_to, scale, decision_no, decision_date,
                    text("approved_by"), text("title", limit=500))


def _district(given: dict, admin_level: str, ref: Reference, problems: list[str]
              ) -> str | None:
    """The pre-2025 district the plan's zones are published under (partition key)."""
    value = given.get("district")
    if is_blank(value) and admin_level == "district":
        value = given.get("admin_code")
    if is_blank(value) and admin_level == "commune" and not is_blank(given.get("admin_code")):
        commune = ref.communes.get(str(given["admin_code"]).strip().zfill(5))
        value = commune.district_code if commune else None
    if is_blank(value):
        problems.append("district is required (--district, or 'district' in the .plan.yaml "
                        "sidecar): zones are published per pre-2025 district")
        return None
    try:
        code = parse_code(value, 3)
    except ValueError:
        problems.append(f"district {value!r} is not a 3-digit district code")
        return None
    if not any(c.district_code == code for c in ref.communes.values()):
        problems.append(f"district {code} is not a pre-2025 district of the GSO catalogue")
        return None
    return code


def _scale(value: object, plan_type: str | None, problems: list[str]) -> int | None:
    implied = SCALE_OF_TYPE.get(plan_type or "")
    if is_blank(value):
        return implied
    text = str(value).strip().removeprefix("1/").removeprefix("1:")
    try:
        scale = int(parse_number(text))
    except ValueError:
        problems.append(f"scale {value!r} is not a number (e.g. 2000 for 1/2000)")
        return None
    if scale <= 0:
        problems.append("scale must be positive")
    elif implied and scale != implied:
        problems.append(f"a {plan_type} plan is at 1/{implied}, not 1/{scale}")
    return scale


class ZoneChecker(ParcelChecker):
    """Parcel row rules plus the zone-specific ones (one planned code, percentages)."""

    def planned_use(self, no: int, value: object) -> tuple[str | None, str | None]:
        if is_blank(value):
            self.reject(no, "planned_use", "required value is missing")
            return None, None
        source = str(value).strip().upper()
        if len([c for c in LAND_USE_SPLIT.split(source) if c]) > 1:
            self.reject(no, "planned_use", "a zone has one planned land-use code", source)
            return None, source
        return self.known_code(no, "planned_use", source, source), source

    def zone_code(self, no: int, value: object) -> str | None:
        if is_blank(value):
            self.reject(no, "zone_code", "required value is missing")
            return None
        if isinstance(value, float) and value == int(value):
            value = int(value)
        code = str(value).strip()
        if len(code) > MAX_ZONE_CODE:
            self.reject(no, "zone_code", f"longer than {MAX_ZONE_CODE} characters",
                        code[:40] + "...")
            return None
        return code

    def bounded(self, no: int, field: str, value: object, low: float, high: float,
                what: str, whole: bool = False) -> float | None:
        """An optional number in [low, high] ('60%' accepted for percentages)."""
        if is_blank(value):
            return None
        try:
            number = parse_number(str(value).strip().removesuffix("%")
                                  if isinstance(value, str) else value)
        except ValueError as exc:
            self.reject(no, field, str(exc), value)
            return None
        if whole and number != int(number):
            self.reject(no, field, f"{what} must be a whole number", value)
            return None
        if not low <= number <= high:
            self.reject(no, field, f"{what} must be between {low:g} and {high:g}", value)
            return None
        return number


def prepare_zones(frame: pd.DataFrame, file: str, source_crs: CRS, ref: Reference,
                  mapping: FieldMapping, meta: PlanMeta, options: Options
                  ) -> tuple[pd.DataFrame, list[Issue], list[str]]:
    """Validate a plan's zones; return (rows to stage, issues, every zone code in the file).

    The zone codes of rejected features are returned too: a quarantined re-delivery must
    not delete the previous version of a zone it failed to deliver cleanly.
    """
    attrs = mapping.select(frame, file)
    n = len(frame)
    feature_nos = np.arange(1, n + 1)
    rows = ZoneChecker(ref)
    records: list[dict] = []
    for i, rec in enumerate(attrs.to_dict("records")):
        no = i + 1
        planned, planned_source = rows.planned_use(no, rec.get("planned_use"))
        area = rows.stated_area(no, rec.get("area_m2"), required=False)
        function = rows.text(no, "function", rec.get("function"))
        if function and len(function) > MAX_FUNCTION:
            rows.reject(no, "function", f"longer than {MAX_FUNCTION} characters",
                        function[:40] + "...")
        coverage = rows.bounded(no, "coverage_pct", rec.get("coverage_pct"), 0, 100,
                                "building coverage (mật độ xây dựng, %)")
        floors = rows.bounded(no, "max_floors", rec.get("max_floors"), 0, 500,
                              "maximum floors (tầng cao)", whole=True)
        far = rows.bounded(no, "far", rec.get("far"), 0, 9999.99,
                           "floor-area ratio (hệ số sử dụng đất)")
        records.append({
            "feature_no": no,
            "district_code": meta.district_code,
            "zone_code": rows.zone_code(no, rec.get("zone_code")),
            "planned_use": planned,
            "planned_use_source": planned_source,
            "function": function,
            "area_m2": round(area, 1) if area is not None else None,
            "coverage_pct": round(coverage, 2) if coverage is not None else None,
            "max_floors": int(floors) if floors is not None else None,
            "far": round(far, 2) if far is not None else None,
        })
    out = pd.DataFrame.from_records(records, columns=[c for c in STAGE_COLUMNS
                                                      if c not in ("wkb", "computed_area_m2")])
    out["max_floors"] = out["max_floors"].astype("Int64")
    issues = rows.issues

    geoms, geom_ok, geom_issues = check_polygons(np.asarray(frame.geometry.values, dtype=object),
                                                 feature_nos)
    issues += geom_issues
    # In Vietnam here; inside the plan's district on the stage, by the district's boundary
    # where one is loaded (``cadastre.location``, run by the loader's merge).
    wgs, located, where_issues = locate(
        geoms, geom_ok, feature_nos, source_crs, np.full(n, meta.district_code, dtype=object),
        {}, lambda i, code: "")
    issues += where_issues

    epsg = ref.province_epsg.get(meta.province_code)
    metric = np.full(n, None, dtype=object)
    computed = np.full(n, np.nan)
    if located.any():
        metric_crs = CRS.from_epsg(epsg) if epsg else source_crs
        metric[located] = (geoms[located] if metric_crs == source_crs
                           else transform(wgs[located], WGS84, metric_crs))
        computed[located] = metric_areas(geoms[located], wgs[located], source_crs, epsg)
    stated = out["area_m2"].to_numpy(dtype=float, na_value=np.nan)
    limits = options.area_tolerance * stated
    issues += area_issues(computed, stated, located, feature_nos, limits,
                          lambda i: f"the {100 * options.area_tolerance:g}% tolerance "
                                    f"({limits[i]:,.2f} m²)")
    issues += _duplicate_codes(out)
    issues += overlapping_zones(metric, located, out["zone_code"].to_numpy(dtype=object),
                                feature_nos, options)

    out["computed_area_m2"] = np.round(computed, 1)
    out["wkb"] = None
    out.loc[located, "wkb"] = shapely.to_wkb(shapely.set_srid(wgs[located], 4326), hex=True,
                                             include_srid=True)
    rejected = {i.feature_no for i in issues if i.severity == "reject"}
    keep = ~out["feature_no"].isin(rejected)
    codes = sorted({c for c in out["zone_code"] if isinstance(c, str)})
    return out.loc[keep, STAGE_COLUMNS].reset_index(drop=True), issues, codes


def _duplicate_codes(out: pd.DataFrame) -> list[Issue]:
    """All copies of a repeated zone code are rejected: which one is right is unknowable."""
    seen: dict[str, list[int]] = defaultdict(list)
    for code, no in zip(out["zone_code"], out["feature_no"], strict=True):
        if isinstance(code, str):
            seen[code].append(int(no))
    return [Issue(no, "zone_code", f"duplicate zone code {code!r} (also feature "
                                   f"{', '.join(str(o) for o in nos if o != no)})", code)
            for code, nos in seen.items() if len(nos) > 1 for no in nos]


def overlapping_zones(metric: np.ndarray, ok: np.ndarray, codes: np.ndarray,
                      feature_nos: np.ndarray, options: Options) -> list[Issue]:
    """Pairs of zones overlapping by more than max(1 m², 0.1% of the smaller zone).

    ``metric`` holds the zones in a metric CRS (the province's TM-3). An STR-tree finds the
    candidate pairs (neighbours that touch included), then the intersection areas are
    computed for those pairs only, vectorised: thousands of zones take well under a second.
    Both zones of a pair are rejected, each naming the other.
    """
    idx = np.flatnonzero(ok)
    if len(idx) < 2:
        return []
    geoms = metric[idx]
    shapely.prepare(geoms)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pair = left < right
    left, right = left[pair], right[pair]
    if not len(left):
        return []
    inter = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    smaller = np.minimum(shapely.area(geoms[left]), shapely.area(geoms[right]))
    limit = np.maximum(options.overlap_min_m2, options.overlap_share * smaller)
    tolerance = (f"max({options.overlap_min_m2:g} m², {100 * options.overlap_share:g}% of "
                 f"the smaller zone)")
    issues: list[Issue] = []
    for k in np.flatnonzero(inter > limit):
        ia, ib = idx[left[k]], idx[right[k]]
        pct = 100 * inter[k] / smaller[k]
        for this, other in ((ia, ib), (ib, ia)):
            issues.append(Issue(int(feature_nos[this]), "geometry",
                                f"overlaps zone {codes[other]!s} (feature "
                                f"{int(feature_nos[other])}) by {inter[k]:,.1f} m² "
                                f"({pct:.2f}% of the smaller zone); zones of one plan must "
                                f"not overlap (tolerance {tolerance})"))
    return issues
