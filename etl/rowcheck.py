"""What every loader's validation shares: the source CRS decided, and a row checker that
collects located issues (reject or repair) while parsing a row's values.

Each domain's rules subclass ``RowChecker`` with the rules of its own fields.
"""

from __future__ import annotations

from pyproj import CRS

from etl.report import Issue, LoadError
from etl.values import is_blank, parse_number


def resolve_crs(file: str, file_crs: CRS | None, stated: str | None) -> CRS:
    """The source CRS: the file's, or the stated one; both present must agree."""
    if stated:
        try:
            stated_crs = CRS.from_user_input(stated)
        except Exception as exc:
            raise LoadError(file, f"--crs {stated!r} is not a CRS PROJ knows: {exc}") from exc
        if file_crs is not None and not same_crs(file_crs, stated_crs):
            raise LoadError(file, f"the file declares {file_crs.name} but --crs says "
                                  f"{stated_crs.name}; fix the .prj or drop --crs")
        return stated_crs
    if file_crs is None:
        raise LoadError(file, "no coordinate reference system (a Shapefile without .prj?); "
                              "state it, e.g. --crs EPSG:5897 for VN-2000 / TM-3 105°, "
                              "--crs EPSG:4326 for WGS84")
    return file_crs


def same_crs(a: CRS, b: CRS) -> bool:
    ea, eb = a.to_epsg(min_confidence=70), b.to_epsg(min_confidence=70)
    if ea is not None and eb is not None:
        return ea == eb
    return a.equals(b, ignore_axis_order=True)


def srid_of(crs: CRS) -> int:
    """EPSG code of the horizontal CRS (a GeoJSON with Z reads as EPSG:4979), 0 if none."""
    return crs.to_2d().to_epsg(min_confidence=70) or 0


class RowChecker:
    """Attribute rules, row by row (cheap next to geometry, and clearer as plain code);
    ``max_text``: the longest text each field may hold."""

    def __init__(self, max_text: dict[str, int] | None = None) -> None:
        self.max_text = max_text or {}
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

    def stated_area(self, no: int, value: object, *, required: bool) -> float | None:
        """The ``area_m2`` a file states: a number greater than 0 (parcels must state one,
        planning zones may)."""
        check = self.required if required else self.optional
        area = check(no, "area_m2", value, parse_number)
        if area is not None and area <= 0:
            self.reject(no, "area_m2", "must be greater than 0", value)
            return None
        return area

    def text(self, no: int, field: str, value: object) -> str | None:
        if is_blank(value):
            return None
        out = str(value).strip()
        limit = self.max_text.get(field)
        if limit and len(out) > limit:
            self.reject(no, field, f"longer than {limit} characters", out[:40] + "...")
            return None
        return out
