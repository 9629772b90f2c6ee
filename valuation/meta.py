"""A price table's identity, sheet roles, adjustment rules and coefficients: the sidecar.

A workbook does not say which table it is in a form a machine can trust, so every delivery
comes with ``<file stem>.prices.yaml`` naming the table (table_code, province, instrument,
effective dates), the role of each sheet, and optionally the adjustment rules and the
coefficients K. Anything wrong here is a whole-delivery ``LoadError``: nothing is loaded.

Rules are data. When a table has none yet and the sidecar states none, ``DEFAULT_RULES``
are stored with it (the typical rules of domain.md: depth layers 20 m at 100%, each further
20 m at 60% of the previous; two frontages +20%; height difference >= 1.5 m -30%), so the
valuation engine only ever reads rules from the database.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from etl import sidecar as etl_sidecar
from etl.report import LoadError
from etl.values import is_blank, parse_code, parse_date, parse_number

ROLES = ("segments", "road_classes", "area_matrix", "area_classes")
SIDECAR_KEYS = {"table_code", "province_code", "province", "instrument", "title",
                "effective_from", "effective_to", "sheets", "rules", "coefficients",
                "columns", "roles"}
SHEET_KEYS = {"sheet", "role", "land_type", "positions", "columns", "header_row"}
COEFFICIENT_KEYS = {"year", "land_type", "k", "district_code", "commune_code", "position",
                    "instrument"}
TABLE_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")
MAX_POSITIONS = 5

# Positions (vị trí). Provinces set them by access first (domain.md: a parcel on the road
# is VT1; on an alley of >= 3.5 m VT2, 2-3.5 m VT3, < 2 m VT4; the widths are each
# province's), with the distance from the road as a second criterion: ``position_width``
# reads the alley width recorded for the parcel (``valuation.parcel_site.alley_width_m``),
# the frontage being the first ``position_band.segment`` band. Where no width is recorded,
# ``fallback`` says what the province states: ``distance`` (the ``position_band`` bands
# below) or ``unpriced``; rows no geometry draws ("các đường còn lại", unnamed roads by
# cross-section) take ``undrawn_position`` (null: unpriced, position unknown).
# Beyond the last segment band a rural parcel takes its commune's area-class price, its
# position from the distance to the nearest priced road (bands under "area"; null = no
# limit); urban land never does (valuation/sql.py).
DEFAULT_RULES: dict[str, dict] = {
    "position_width": {
        "alley": [{"position": 2, "min_width_m": 3.5}, {"position": 3, "min_width_m": 2},
                  {"position": 4, "min_width_m": 0}],
        "fallback": "distance",
        "undrawn_position": None,
    },
    "position_band": {
        "segment": [{"position": 1, "max_m": 5}, {"position": 2, "max_m": 150},
                    {"position": 3, "max_m": 300}, {"position": 4, "max_m": 450}],
        "area": [{"position": 1, "max_m": 600}, {"position": 2, "max_m": 1200},
                 {"position": 3, "max_m": 1800}, {"position": 4, "max_m": None}],
    },
    "depth_layer": {
        "positions": [1],
        "layers": [{"from_m": 0, "to_m": 20, "pct": 100}, {"from_m": 20, "to_m": 40, "pct": 60},
                   {"from_m": 40, "to_m": 60, "pct": 36},
                   {"from_m": 60, "to_m": 80, "pct": 21.6},
                   {"from_m": 80, "to_m": None, "pct": 12.96}],
    },
    "two_frontages": {"pct": 120, "min_roads": 2},
    "height_difference": {"min_m": 1.5, "pct": 70},
}


@dataclass(frozen=True)
class SheetSpec:
    """One sheet of the delivery: its name (None for a CSV), role, land type, positions."""

    sheet: str | None
    role: str
    land_type: str | None = None
    positions: int | None = None
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    replace: frozenset[str] = frozenset()
    header_row: int | None = None  # 1-based first header row, when the finder must not guess


@dataclass(frozen=True)
class TableMeta:
    table_code: str
    province_code: str
    instrument: str
    title: str | None
    effective_from: date
    effective_to: date | None
    sheets: tuple[SheetSpec, ...]
    rules: dict[str, dict] | None = None
    coefficients: list[dict] | None = field(default=None)
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    replace: frozenset[str] = frozenset()
    roles: dict[str, list[str]] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"table_code": self.table_code, "province_code": self.province_code,
                "instrument": self.instrument, "title": self.title,
                "effective_from": self.effective_from.isoformat(),
                "effective_to": self.effective_to.isoformat() if self.effective_to else None,
                "sheets": [{k: v for k, v in s.__dict__.items() if k != "replace"}
                           | {"replace": sorted(s.replace)} for s in self.sheets],
                "columns": self.columns, "replace": sorted(self.replace),
                "roles": self.roles}


def find_sidecar(path: Path) -> Path | None:
    """``<file name>.prices.yaml`` or ``<stem>.prices.yaml`` beside the workbook/CSV."""
    return etl_sidecar.find_sidecar(path, ".prices.yaml")


def read_sidecar(path: Path | None, file: str) -> dict:
    return etl_sidecar.read_sidecar(path, file, SIDECAR_KEYS, "table")


def table_meta(file: str, sidecar: dict, overrides: dict, provinces: set[str],
               land_types: set[str], is_csv: bool, column_names: tuple[str, ...] = (),
               roles: dict[str, list[str]] | None = None) -> TableMeta:
    """Validate the sidecar merged with command-line values (the command line wins).

    ``column_names`` are the mapping's canonical names, which ``columns:`` (the whole
    table's) and a sheet's ``columns:`` may give headings for; ``roles`` the columns each
    role needs by default, which ``roles:`` may change.
    """
    given = {**sidecar, **{k: v for k, v in overrides.items() if not is_blank(v)}}
    problems: list[str] = []
    columns, replace = etl_sidecar.column_headings(given.get("columns"), column_names,
                                                   "columns", problems)
    role_columns = _roles(given.get("roles"), roles or {}, column_names, problems)
    code = str(given.get("table_code") or "").strip()
    if not TABLE_CODE.match(code):
        problems.append("table_code is required (--table-code or the sidecar): letters, "
                        "digits, '.', '_' or '-', at most 50")
    province = None
    raw_province = given.get("province_code", given.get("province"))
    try:
        province = parse_code(raw_province, 2)
        if province not in provinces:
            problems.append(f"province_code {province} is not a known province")
    except (ValueError, TypeError):
        problems.append(f"province_code {raw_province!r} is not a 2-digit GSO code")
    instrument = str(given.get("instrument") or "").strip()
    if not instrument:
        problems.append("instrument (the issuing decision, e.g. 'Quyết định 30/2024/QĐ-UBND') "
                        "is required")
    eff_from = eff_to = None
    try:
        eff_from = parse_date(given.get("effective_from"))
    except (ValueError, TypeError):
        problems.append(f"effective_from {given.get('effective_from')!r} is not a date")
    if not is_blank(given.get("effective_to")):
        try:
            eff_to = parse_date(given["effective_to"])
        except ValueError:
            problems.append(f"effective_to {given['effective_to']!r} is not a date")
    if eff_from and eff_to and eff_to < eff_from:
        problems.append("effective_to is before effective_from")
    sheets = _sheets(given.get("sheets"), land_types, is_csv, problems, column_names)
    rules = None
    if given.get("rules") is not None:
        rules = validate_rules(given["rules"], problems)
    coefficients = None
    if given.get("coefficients") is not None:
        coefficients = _coefficients(given["coefficients"], land_types, problems)
    if problems:
        raise LoadError(file, "price table metadata: " + "; ".join(problems))
    return TableMeta(code, province, instrument, _text(given.get("title")), eff_from, eff_to,
                     sheets, rules, coefficients, columns, replace, role_columns)


def _roles(value: object, defaults: dict[str, list[str]], names: tuple[str, ...],
           problems: list[str]) -> dict[str, list[str]]:
    """The columns each role needs: the mapping's, with the sidecar's ``roles:`` over them."""
    out = {role: list(cols) for role, cols in defaults.items()}
    if value is None:
        return out
    if not isinstance(value, dict):
        problems.append("roles: a mapping of role -> the columns a sheet of it needs")
        return out
    for role, cols in value.items():
        if role not in ROLES:
            problems.append(f"roles: unknown role {role!r} ({', '.join(ROLES)})")
        elif (not isinstance(cols, list) or not cols
              or not all(isinstance(c, str) and c in names for c in cols)):
            problems.append(f"roles.{role}: a list of column names ({', '.join(names)})")
        else:
            out[role] = list(cols)
    return out


def _text(value: object) -> str | None:
    return None if is_blank(value) else str(value).strip()


def _sheets(value: object, land_types: set[str], is_csv: bool,
            problems: list[str], column_names: tuple[str, ...] = ()) -> tuple[SheetSpec, ...]:
    if not isinstance(value, list) or not value:
        problems.append("sheets: list each sheet with its role (" + ", ".join(ROLES) + ")")
        return ()
    if is_csv and len(value) != 1:
        problems.append("sheets: a CSV file is one sheet; list exactly one")
    out = []
    for i, spec in enumerate(value, start=1):
        if not isinstance(spec, dict):
            problems.append(f"sheets[{i}]: a mapping of {', '.join(sorted(SHEET_KEYS))}")
            continue
        if set(spec) - SHEET_KEYS:
            problems.append(f"sheets[{i}]: unknown key(s) "
                            f"{', '.join(sorted(map(str, set(spec) - SHEET_KEYS)))} "
                            f"(known: {', '.join(sorted(SHEET_KEYS))})")
            continue
        role = spec.get("role")
        if role not in ROLES:
            problems.append(f"sheets[{i}]: role {role!r} is not one of {', '.join(ROLES)}")
        name = None if is_blank(spec.get("sheet")) else str(spec["sheet"])
        if name is None and not is_csv:
            problems.append(f"sheets[{i}]: sheet (its name in the workbook) is required")
        land = None if is_blank(spec.get("land_type")) else str(spec["land_type"]).upper()
        if land is not None and land not in land_types:
            problems.append(f"sheets[{i}] ({name or 'CSV'}): land type {land!r} is not a "
                            f"valuation land type ({', '.join(sorted(land_types))})")
        if role in ("segments", "road_classes") and land is None:
            problems.append(f"sheets[{i}] ({name or 'CSV'}): a {role} sheet needs its "
                            "land_type")
        columns, replace = etl_sidecar.column_headings(
            spec.get("columns"), column_names, f"sheets[{i}].columns", problems)
        header_row = spec.get("header_row")
        if header_row is not None and (not isinstance(header_row, int) or header_row < 1):
            problems.append(f"sheets[{i}]: header_row is the sheet's row number (1, 2, ...)")
            header_row = None
        positions = spec.get("positions")
        if positions is not None and (not isinstance(positions, int)
                                      or not 1 <= positions <= MAX_POSITIONS):
            problems.append(f"sheets[{i}]: positions must be 1-{MAX_POSITIONS}")
            positions = None
        out.append(SheetSpec(name, role, land, positions, columns, replace, header_row))
    names = [s.sheet for s in out if s.sheet]
    if len(names) != len(set(names)):
        problems.append("sheets: a sheet is listed twice")
    return tuple(out)


def _number(value: object) -> float | None:
    if value is None:
        return None
    return parse_number(value)


def _bands(bands: object, where: str, open_end: bool, problems: list[str]) -> None:
    if not isinstance(bands, list) or not bands:
        problems.append(f"{where}: a list of {{position, max_m}}")
        return
    last = 0.0
    for i, band in enumerate(bands, start=1):
        try:
            position = int(band["position"])
            limit = _number(band.get("max_m"))
        except (KeyError, TypeError, ValueError):
            problems.append(f"{where}[{i}]: needs position and max_m")
            return
        if position != i:
            problems.append(f"{where}[{i}]: positions run 1, 2, 3, ... (got {position})")
        if limit is None:
            if not (open_end and i == len(bands)):
                problems.append(f"{where}[{i}]: max_m is required")
        elif limit <= last:
            problems.append(f"{where}[{i}]: max_m must grow ({limit} after {last})")
        else:
            last = limit


def validate_rules(rules: object, problems: list[str]) -> dict[str, dict]:
    """Check each rule's parameters; returns the rules as given (plain, JSON-safe)."""
    if not isinstance(rules, dict):
        problems.append("rules: a mapping of rule kind -> parameters")
        return {}
    known = set(DEFAULT_RULES)
    for kind in sorted(set(rules) - known):
        problems.append(f"rules: unknown kind {kind!r} ({', '.join(sorted(known))})")
    out = copy.deepcopy({k: v for k, v in rules.items() if k in known})
    band = out.get("position_band")
    if band is not None:
        if not isinstance(band, dict):
            problems.append("rules.position_band: a mapping with 'segment' and 'area'")
        else:
            _bands(band.get("segment"), "rules.position_band.segment", False, problems)
            _bands(band.get("area"), "rules.position_band.area", True, problems)
    depth = out.get("depth_layer")
    if depth is not None:
        layers = depth.get("layers") if isinstance(depth, dict) else None
        if not isinstance(layers, list) or not layers:
            problems.append("rules.depth_layer.layers: a list of {from_m, to_m, pct}")
        else:
            expect = 0.0
            for i, layer in enumerate(layers, start=1):
                try:
                    start, end = _number(layer["from_m"]), _number(layer.get("to_m"))
                    pct = _number(layer["pct"])
                except (KeyError, TypeError, ValueError):
                    problems.append(f"rules.depth_layer.layers[{i}]: needs from_m, to_m, pct")
                    break
                if start != expect:
                    problems.append(f"rules.depth_layer.layers[{i}]: from_m must be {expect:g}")
                if end is None and i != len(layers):
                    problems.append(f"rules.depth_layer.layers[{i}]: only the last layer may "
                                    "be open (to_m null)")
                if end is not None and end <= (start or 0):
                    problems.append(f"rules.depth_layer.layers[{i}]: to_m must exceed from_m")
                if pct is None or not 0 < pct <= 100:
                    problems.append(f"rules.depth_layer.layers[{i}]: pct must be in (0, 100]")
                expect = end if end is not None else expect
        positions = depth.get("positions", [1]) if isinstance(depth, dict) else []
        if not isinstance(positions, list) or not all(
                isinstance(p, int) and 1 <= p <= MAX_POSITIONS for p in positions):
            problems.append("rules.depth_layer.positions: a list of positions 1-5")
    for kind, keys in (("two_frontages", ("pct",)), ("height_difference", ("min_m", "pct"))):
        params = out.get(kind)
        if params is None:
            continue
        try:
            if not isinstance(params, dict) or any(_number(params[k]) <= 0 for k in keys):
                raise ValueError
        except (KeyError, TypeError, ValueError):
            problems.append(f"rules.{kind}: {' and '.join(keys)} must be positive numbers")
    if isinstance(out.get("two_frontages"), dict):
        out["two_frontages"].setdefault("min_roads", 2)
    if out.get("position_width") is not None:
        _position_width(out["position_width"], problems)
    return out


def _position_width(rule: object, problems: list[str]) -> None:
    """``position_width``: alley bands (position, min_width_m: widest first), the fallback
    where no width is recorded, and the position of rows no geometry draws."""
    where = "rules.position_width"
    known = {"alley", "fallback", "undrawn_position"}
    if not isinstance(rule, dict) or set(rule) - known:
        problems.append(f"{where}: a mapping of {', '.join(sorted(known))}")
        return
    bands = rule.get("alley")
    if not isinstance(bands, list) or not bands:
        problems.append(f"{where}.alley: a list of {{position, min_width_m}}")
    else:
        last_pos, last_width = 1, None
        for i, band in enumerate(bands, start=1):
            try:
                position, width = int(band["position"]), _number(band["min_width_m"])
            except (KeyError, TypeError, ValueError):
                problems.append(f"{where}.alley[{i}]: needs position and min_width_m")
                return
            if not last_pos < position <= MAX_POSITIONS:
                problems.append(f"{where}.alley[{i}]: positions run 2, 3, ... up to "
                                f"{MAX_POSITIONS} (got {position})")
            if width is None or width < 0 or (last_width is not None and width >= last_width):
                problems.append(f"{where}.alley[{i}]: min_width_m must shrink from band to "
                                f"band and not be negative (got {width})")
            last_pos, last_width = position, width
        if last_width not in (0, 0.0):
            problems.append(f"{where}.alley: the last band must start at min_width_m 0, so "
                            "every recorded width has a position")
    if rule.get("fallback", "distance") not in ("distance", "unpriced"):
        problems.append(f"{where}.fallback: distance (the position_band bands) or unpriced")
    undrawn = rule.get("undrawn_position")
    if undrawn is not None and (not isinstance(undrawn, int)
                                or not 1 <= undrawn <= MAX_POSITIONS):
        problems.append(f"{where}.undrawn_position: a position 1-{MAX_POSITIONS}, or null "
                        "(unpriced where no alley width is recorded)")


def _coefficients(value: object, land_types: set[str], problems: list[str]) -> list[dict]:
    """K by year and land type, optionally for one district, one commune (pre-2025 or
    2025 code: a table keyed by the new communes names no district) and one position."""
    if not isinstance(value, list):
        problems.append("coefficients: a list of {year, land_type, k, district_code?, "
                        "commune_code?, position?}")
        return []
    out = []
    for i, item in enumerate(value, start=1):
        if isinstance(item, dict) and set(item) - COEFFICIENT_KEYS:
            problems.append(f"coefficients[{i}]: unknown key(s) "
                            f"{', '.join(sorted(map(str, set(item) - COEFFICIENT_KEYS)))} "
                            f"(known: {', '.join(sorted(COEFFICIENT_KEYS))})")
            continue
        try:
            year = int(item["year"])
            land = str(item["land_type"]).upper()
            k = parse_number(item["k"])
            district = None if is_blank(item.get("district_code")) else parse_code(
                item["district_code"], 3)
            commune = None if is_blank(item.get("commune_code")) else parse_code(
                item["commune_code"], 5)
            position = None if is_blank(item.get("position")) else int(item["position"])
        except (KeyError, TypeError, ValueError):
            problems.append(f"coefficients[{i}]: needs year, land_type, k (and optionally "
                            "a 3-digit district_code, a 5-digit commune_code, a position)")
            continue
        if position is not None and not 1 <= position <= MAX_POSITIONS:
            problems.append(f"coefficients[{i}]: position must be 1-{MAX_POSITIONS}")
        if land not in land_types:
            problems.append(f"coefficients[{i}]: land type {land!r} is not a valuation "
                            "land type")
        if not 0 < k < 100 or not 1990 <= year <= 2100:
            problems.append(f"coefficients[{i}]: k must be positive and the year plausible")
        out.append({"year": year, "land_type": land, "district_code": district,
                    "commune_code": commune, "position": position,
                    "k": round(k, 4), "instrument": _text(item.get("instrument"))})
    keys = [(c["year"], c["land_type"], c["district_code"], c["commune_code"], c["position"])
            for c in out]
    if len(keys) != len(set(keys)):
        problems.append("coefficients: the same year, land type, district, commune and "
                        "position twice")
    return out
