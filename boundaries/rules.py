"""Validation rules for a delivered boundary file: turn a read file into units to stage.

A boundary delivery is one level of units (communes, districts or provinces) of one period:
the pre-2025 units (valid until 30 June 2025, communes with their districts) or the units
since the 1 July 2025 reform (34 provinces, their communes, no districts). Every rejected
feature is named with its feature number, field and rule: a code that is no unit of that
period in ``admin.admin_unit``, a district or province code that contradicts the
catalogue, a geometry that is not a polygon or cannot be repaired unambiguously, a
location outside Vietnam after reprojection or far from where the unit (or its district)
is known to be, a code delivered twice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from sqlalchemy import text
from sqlalchemy.engine import Connection

from etl.fieldmap import FieldMapping, normalise_name
from etl.geometry import bounds_within, check_polygons, locate
from etl.report import Issue, LoadError
from etl.rowcheck import RowChecker
from etl.values import is_blank, parse_code

# A period is the day its units are valid on (admin.admin_unit.valid_from/valid_to).
PERIODS = {"pre2025": date(2025, 6, 30), "2025": date(2025, 7, 1)}
PERIOD_NAMES = {"pre2025": "the pre-2025 units (valid until 30 June 2025)",
                "2025": "the units since the 1 July 2025 reform"}
WIDTH = {"commune": 5, "district": 3, "province": 2}
LEVEL_OF_WIDTH = {5: "commune", 3: "district", 2: "province", 1: "province"}
# What a delivery's level field may say (folded like field names: no case, diacritics).
LEVEL_WORDS = {
    "commune": ("xa", "phuong", "thitran", "capxa", "commune", "ward", "3"),
    "district": ("huyen", "quan", "thixa", "caphuyen", "district", "2"),
    "province": ("tinh", "thanhpho", "thanhphotrunguong", "captinh", "province", "1"),
}
STAGE_COLUMNS = ["feature_no", "unit_id", "level", "code", "wkb"]
MAX_NAME = 200
# A delivered boundary must lie within the box of what is known of the unit (its current
# boundary or extent, else its parent's) give or take this much (~11 km): a correction
# moves a line by metres (a wrong earlier delivery being put right, by kilometres); a
# wrong CRS (another TM-3 meridian still lands in Vietnam) by hundreds of kilometres.
KNOWN_MARGIN_DEG = 0.1
PARENT_LEVEL = {("pre2025", "commune"): "district", ("pre2025", "district"): "province",
                ("2025", "commune"): "province"}


@dataclass(frozen=True)
class Options:
    """How to read a boundary delivery: its CRS when the file has none; its period
    (``pre2025`` or ``2025``; None: a file with districts is pre-2025, else it must be
    stated); its level when its codes cannot say (a generic code stored as a number)."""

    crs: str | None = None
    period: str | None = None
    level: str | None = None


@dataclass(frozen=True)
class Unit:
    id: int
    level: str
    code: str
    name: str
    parent_code: str | None


@dataclass(frozen=True)
class Catalogue:
    """The units of one period, by (level, code)."""

    period: str
    units: dict[tuple[str, str], Unit]
    # (level, code) -> the box of its geometry (boundary or extent), where it has one
    boxes: dict[tuple[str, str], tuple[float, float, float, float]]

    @classmethod
    def load(cls, conn: Connection, period: str) -> Catalogue:
        units, boxes = {}, {}
        for r in conn.execute(text("""
            SELECT id, level, code, name, parent_code, ST_XMin(geom) AS x0,
                   ST_YMin(geom) AS y0, ST_XMax(geom) AS x1, ST_YMax(geom) AS y1
              FROM admin.admin_unit
             WHERE coalesce(valid_from, '-infinity'::date) <= :on
               AND coalesce(valid_to, 'infinity'::date) >= :on
        """), {"on": PERIODS[period]}):
            units[(r.level, r.code)] = Unit(r.id, r.level, r.code, r.name, r.parent_code)
            if r.x0 is not None:
                boxes[(r.level, r.code)] = (r.x0, r.y0, r.x1, r.y1)
        return cls(period, units, boxes)

    def known_box(self, unit: Unit) -> tuple[str, tuple[float, float, float, float]] | None:
        """(what, box): where the unit is known to lie, by its own geometry or else its
        parent's; None when neither is known."""
        if (unit.level, unit.code) in self.boxes:
            return f"{unit.level} {unit.code}", self.boxes[(unit.level, unit.code)]
        parent = (PARENT_LEVEL.get((self.period, unit.level)), unit.parent_code or "")
        if parent in self.boxes:
            return f"{parent[0]} {parent[1]}", self.boxes[parent]
        return None

    def province_of(self, unit: Unit) -> str | None:
        if unit.level == "province":
            return unit.code
        parent = self.units.get(("district", unit.parent_code or ""))
        if unit.level == "commune" and parent is not None:
            return parent.parent_code  # pre-2025: commune -> district -> province
        return unit.parent_code


def file_level(columns: set[str], options: Options, file: str) -> str | None:
    """The level of every unit of the file, or None: each row's generic code says."""
    if options.level:
        if options.level not in WIDTH:
            raise LoadError(file, f"level must be one of {', '.join(WIDTH)}, not "
                                  f"{options.level!r}")
        return options.level
    for level in WIDTH:
        if f"{level}_code" in columns:
            return level
    if "unit_code" in columns:
        return None
    raise LoadError(file, "no unit code field: one of MaXa (communes), MaHuyen (districts), "
                          "MaTinh (provinces) or MaDVHC (any level) is needed")


def file_period(columns: set[str], level: str | None, options: Options, file: str) -> str:
    """The period the delivery's units belong to: stated, or pre-2025 for a file that has
    districts (there are none since the reform); a commune or province file must say."""
    period = options.period
    if period is not None and period not in PERIODS:
        raise LoadError(file, f"period must be pre2025 or 2025, not {period!r}")
    has_districts = level == "district" or (level == "commune"
                                            and "district_code" in columns)
    if period is None:
        if not has_districts:
            raise LoadError(file, "state the period of the units: --period pre2025 (units "
                                  "as of 30 June 2025, with districts) or --period 2025 "
                                  "(units since the 1 July 2025 reform)")
        period = "pre2025"
    if period == "2025" and level == "district":
        raise LoadError(file, "there are no districts since the 1 July 2025 reform: a "
                              "district file is --period pre2025")
    return period


class UnitChecker(RowChecker):
    """The rules of one row: its code is a unit of the period, its parents agree."""

    def __init__(self, catalogue: Catalogue) -> None:
        super().__init__({"name": MAX_NAME})
        self.catalogue = catalogue

    def level_of(self, no: int, level_value: object, code_value: object) -> str | None:
        if not is_blank(level_value):
            word = normalise_name(str(level_value))
            for level, words in LEVEL_WORDS.items():
                if word in words or any(word.startswith(w) for w in words if len(w) > 1):
                    return level
            self.reject(no, "level", "not a level of unit (xã/phường/thị trấn, "
                                     "huyện/quận/thị xã, tỉnh/thành phố)", level_value)
            return None
        if is_blank(code_value):
            return None  # the code's own rule reports it
        digits = str(int(code_value)) if isinstance(code_value, float) \
            and code_value == int(code_value) else str(code_value).strip()
        level = LEVEL_OF_WIDTH.get(len(digits)) if digits.isdigit() else None
        if level is None:
            self.reject(no, "unit_code", "a unit code has 5 (commune), 3 (district) or 2 "
                                         "(province) digits", code_value)
        return level

    def unit(self, no: int, field: str, level: str, value: object) -> Unit | None:
        code = self.required(no, field, value, parse_code, WIDTH[level])
        if code is None:
            return None
        unit = self.catalogue.units.get((level, code))
        if unit is None:
            self.reject(no, field, f"{level} {code} is not a unit of "
                                   f"{PERIOD_NAMES[self.catalogue.period]} in the GSO "
                                   "catalogue", code)
        return unit

    def parent(self, no: int, unit: Unit, field: str, level: str, value: object) -> None:
        """A district or province code the row also carries must be the catalogue's."""
        if is_blank(value) or unit.level == level:
            return
        try:
            given = parse_code(value, WIDTH[level])
        except ValueError as exc:
            self.reject(no, field, str(exc), value)
            return
        known = unit.parent_code if level == "district" else \
            self.catalogue.province_of(unit)
        if unit.level == "commune" and level == "district" and self.catalogue.period == "2025":
            self.reject(no, field, "communes since the 2025 reform belong to no district",
                        given)
        elif known != given:
            self.reject(no, field, f"{unit.level} {unit.code} lies in {level} {known} (GSO "
                                   f"catalogue), not {given}", given)

    def name(self, no: int, unit: Unit, value: object) -> None:
        """A name that is not the catalogue's is worth a note (names are respelled; the
        code decides)."""
        text_ = self.text(no, "name", value)
        if text_ is None:
            return
        given, known = normalise_name(text_), normalise_name(unit.name)
        if given not in known and known not in given:
            self.issues.append(Issue(no, "name", f"the catalogue names {unit.level} "
                                     f"{unit.code} {unit.name!r}", str(value),
                                     severity="note"))


def prepare_boundaries(frame: pd.DataFrame, file: str, source_crs: CRS,
                       catalogue: Catalogue, mapping: FieldMapping, level: str | None
                       ) -> tuple[pd.DataFrame, list[Issue]]:
    """Validate a boundary file's features; return (units to stage, issues)."""
    attrs = mapping.select(frame, file)
    n = len(frame)
    feature_nos = np.arange(1, n + 1)
    rows = UnitChecker(catalogue)
    column = {c: attrs[c].tolist() if c in attrs.columns else [None] * n
              for c in ("commune_code", "district_code", "province_code", "unit_code",
                        "level", "name")}
    records = []
    for i in range(n):
        no = i + 1
        if level is not None:
            field = f"{level}_code" if f"{level}_code" in attrs.columns else "unit_code"
            row_level = level
        else:
            field = "unit_code"
            row_level = rows.level_of(no, column["level"][i], column["unit_code"][i])
        unit = rows.unit(no, field, row_level, column[field][i]) if row_level else None
        if unit is not None:
            for parent in ("district", "province"):
                rows.parent(no, unit, f"{parent}_code", parent, column[f"{parent}_code"][i])
            rows.name(no, unit, column["name"][i])
        records.append({"feature_no": no, "unit_id": unit.id if unit else None,
                        "level": unit.level if unit else None,
                        "code": unit.code if unit else None})
    out = pd.DataFrame.from_records(records, columns=STAGE_COLUMNS[:-1])
    issues = rows.issues

    geoms, geom_ok, geom_issues = check_polygons(
        np.asarray(frame.geometry.values, dtype=object), feature_nos)
    issues += geom_issues
    wgs, located, where_issues = locate(geoms, geom_ok, feature_nos, source_crs,
                                        np.full(n, None, dtype=object), {},
                                        lambda i, code: "")
    issues += where_issues
    issues += far_from_known(wgs, located, out, catalogue)
    issues += duplicate_units(out)

    out["wkb"] = None
    out.loc[located, "wkb"] = shapely.to_wkb(shapely.set_srid(wgs[located], 4326),
                                             hex=True, include_srid=True)
    rejected = {i.feature_no for i in issues if i.severity == "reject"}
    keep = ~out["feature_no"].isin(rejected)
    staged = out.loc[keep, STAGE_COLUMNS].reset_index(drop=True)
    staged["unit_id"] = staged["unit_id"].astype("Int64")
    return staged, sorted(issues, key=lambda i: i.feature_no)


def far_from_known(wgs: np.ndarray, located: np.ndarray, out: pd.DataFrame,
                   catalogue: Catalogue) -> list[Issue]:
    """A reject for each boundary outside the box of what is known of its unit (its
    current boundary or extent, else its parent's), give or take ``KNOWN_MARGIN_DEG``;
    ``located`` is cleared for them."""
    issues = []
    for i in np.flatnonzero(located & out["code"].notna().to_numpy()):
        unit = catalogue.units[(out.at[i, "level"], out.at[i, "code"])]
        known = catalogue.known_box(unit)
        if known is None or bounds_within(wgs[i:i + 1], known[1], KNOWN_MARGIN_DEG)[0]:
            continue
        located[i] = False
        x, y = shapely.get_coordinates(wgs[i])[0]
        issues.append(Issue(int(out.at[i, "feature_no"]), "geometry",
                            f"{unit.level} {unit.code} lies outside where {known[0]} is "
                            f"known to be (its box, give or take {KNOWN_MARGIN_DEG:g}°; "
                            f"first point {x:.5f}, {y:.5f}): is the CRS right?"))
    return issues


def duplicate_units(out: pd.DataFrame) -> list[Issue]:
    """Every copy of a unit delivered twice is rejected: which boundary is right is not
    for the loader to guess (a unit of several parts is one MultiPolygon feature)."""
    seen: dict[tuple[str, str], list[int]] = defaultdict(list)
    for level, code, no in zip(out["level"], out["code"], out["feature_no"], strict=True):
        if isinstance(code, str):
            seen[(level, code)].append(int(no))
    return [Issue(no, f"{level}_code", f"{level} {code} is delivered more than once (also "
                                       f"feature {', '.join(str(o) for o in nos if o != no)})",
                  code)
            for (level, code), nos in seen.items() if len(nos) > 1 for no in nos]
