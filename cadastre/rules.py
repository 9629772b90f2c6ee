"""Validation rules for delivered cadastral parcels: turn a read file into rows to stage.

Each rule names the feature, field and reason of every row it rejects. The order is
attributes, geometry, CRS/reprojection, location in Vietnam, area, then duplicate keys, so
a row reports every independent problem it has, not only the first. A file is checked a
batch at a time (``check_batch``), so its size does not bound what a load can hold; the
rules that need the whole file are made on the stage, in the database: duplicate keys
(``cadastre.merge.duplicate_keys``) and inside the district and the commune
(``cadastre.location``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from pyproj import CRS

from cadastre.holders import party_kind
from cadastre.reference import Reference
from etl.fieldmap import FieldMapping
from etl.geometry import area_issues, check_polygons, locate, metric_areas
from etl.report import Issue
from etl.rowcheck import RowChecker, srid_of
from etl.values import (
    codes_column,
    dates_column,
    is_blank,
    numbers_column,
    parse_code,
    parse_date,
    parse_number,
    parse_positive_int,
    positive_ints_column,
    texts_column,
)

LAND_USE_SPLIT = re.compile(r"\s*[+,;/]\s*")
AREA_SLICE_ROWS = 50_000
MAX_TEXT = {"address": 500, "owner_name": 200, "owner_id_number": 20,
            "certificate_serial": 30, "change_kind": 100}
STAGE_COLUMNS = [
    "feature_no", "province_code", "district_code", "commune_code", "sheet_no", "parcel_no",
    "area_m2", "computed_area_m2", "legal_area_m2", "land_use", "land_use_source",
    "address", "current_province_code", "current_commune_code", "source_srid", "wkb",
    "owner_name", "owner_id_number", "certificate_serial", "certificate_date", "scale",
    "scale_stated", "owner_kind", "land_use_areas",
]
# Map scales of cadastral sheets (Thông tư 25/2014/TT-BTNMT: 1:200 to 1:10000).
SCALES = (200, 500, 1000, 2000, 5000, 10000)
# The scale assumed for a sheet when neither the delivery, its sidecar nor an earlier
# delivery states one, by the kind of unit (domain.md: urban sheets 1:200-1:500,
# peri-urban 1:1000, rural 1:2000-1:10000): the largest usual scale, i.e. the strictest
# tolerance a real sheet of that kind is held to.
DEFAULT_SCALE = {"ward": 500, "town": 1000, "commune": 2000}
DELIVERIES = ("changes", "resurvey")
# The upload routes (cadastre/uploads.py): the body-limit middleware gives them
# LIS_MAX_UPLOAD_BYTES. Here, so that naming them imports no HTTP stack.
LOAD_PATHS = r"/districts/[^/]*/loads/[^/]*"
OLD_REF = re.compile(r"^(?:(\d{1,9})\s*/\s*)?(\d{1,9})$")  # "12" or "5/12" (sheet/parcel)
OLD_SPLIT = re.compile(r"\s*[,;+]\s*")  # several old numbers: "12, 13" or "5/12; 5/13"
# One part of DienTichMucDich: "ODT:120.5" (the parts of "ODT:120.5;CLN:45.2").
AREA_PART = re.compile(r"^\s*([A-Za-z]{2,4})\s*:\s*(\S+)\s*$")
PART_TOLERANCE_M2 = 0.1  # each part is stated to 0.1 m²: the parts' sum may drift by that


@dataclass(frozen=True)
class Options:
    """How to read a parcel delivery: its CRS when the file has none; what it is
    (``changes``: changed parcels, their old numbers retire their parents; ``resurvey``:
    the whole cadastre of its communes, đo đạc lại); the map scale of sheets it states
    none for, and per sheet (``sheet_scales``: sheet number -> scale)."""

    crs: str | None = None
    delivery: str | None = None  # None: the sidecar's, else "changes"
    scale: int | None = None
    sheet_scales: dict[int, int] = field(default_factory=dict)


def permissible_area_error(stated: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The largest difference between a parcel's stated and drawn area the cadastral
    mapping regulation allows: ΔP = 0.0004 · M · √P (M the sheet's scale denominator, P the
    area in m²; Thông tư 25/2014/TT-BTNMT), never tighter than the rounding of the stated
    value (half its last digit: a value stated to 0.1 m² may be off by 0.05 m²)."""
    with np.errstate(invalid="ignore"):
        regulation = 0.0004 * scale * np.sqrt(np.abs(stated))
        whole = np.isclose(stated, np.round(stated))
    return np.maximum(regulation, np.where(whole, 0.5, 0.05))


class ParcelChecker(RowChecker):
    """The generic row rules plus the cadastre's: land-use codes from the code list."""

    def __init__(self, ref: Reference) -> None:
        super().__init__(MAX_TEXT)
        self.ref = ref

    def land_use(self, no: int, value: object) -> tuple[str | None, str | None]:
        if is_blank(value):
            self.reject(no, "land_use", "required value is missing")
            return None, None
        source = str(value).strip().upper()
        codes: list[str] = []
        for given in (c for c in LAND_USE_SPLIT.split(source) if c):
            code = self.known_code(no, "land_use", given, source)
            if code is None:
                return None, source
            if code not in codes:
                codes.append(code)
        if not codes:
            self.reject(no, "land_use", "required value is missing")
            return None, source
        return "+".join(codes), source

    def known_code(self, no: int, field: str, code: str, source: str) -> str | None:
        """A code of the land-use code list; a superseded 2018 code is mapped to its 2024
        replacement (a repair); an unknown one is rejected (None)."""
        if code not in self.ref.land_use:
            self.reject(no, field, f"unknown land-use code {code!r}", source)
            return None
        replacement = self.ref.land_use[code]
        if replacement:
            self.repair(no, field, f"superseded 2018 code {code} mapped to {replacement}",
                        source)
            return replacement
        return code

    def owner_kind(self, no: int, value: object) -> str | None:
        """The kind of the owner the parcel file names (``LoaiChu``): an alias of
        ``mappings/party_kinds.yaml``; an unknown kind rejects the row."""
        if is_blank(value):
            return None
        try:
            return party_kind(value)
        except ValueError as exc:
            self.reject(no, "owner_kind", str(exc), value)
            return None

    def land_use_areas(self, no: int, value: object, land_use: str | None,
                       area: float | None) -> str | None:
        """The area of each purpose of a mixed-use parcel (``DienTichMucDich``,
        "ODT:120.5;CLN:45.2"), staged as its areas in the order of the parcel's codes
        ("120.5;45.2"). The codes must be the parcel's own purposes in their order (a 2018
        code read as its replacement, as in ``land_use``); the parts must add up to the
        stated area within 0.1 m² per part (each is rounded to 0.1 m²). None for a
        single-purpose parcel (its one part is the parcel's area) and when not given."""
        if is_blank(value):
            return None
        source = str(value).strip()
        codes: list[str] = []
        areas: list[float] = []
        for part in (p for p in source.split(";") if p.strip()):
            match = AREA_PART.match(part)
            if match is None:
                self.reject(no, "land_use_areas", "each part is CODE:AREA, parts separated "
                            "by ';' (\"ODT:120.5;CLN:45.2\")", source)
                return None
            code = match.group(1).upper()
            if code not in self.ref.land_use:
                self.reject(no, "land_use_areas", f"unknown land-use code {code!r}", source)
                return None
            codes.append(self.ref.land_use[code] or code)
            try:
                part_area = parse_number(match.group(2))
            except ValueError as exc:
                self.reject(no, "land_use_areas", f"the area of {code}: {exc}", source)
                return None
            if part_area <= 0:
                self.reject(no, "land_use_areas", f"the area of {code} must be greater "
                            "than 0", source)
                return None
            areas.append(round(part_area, 1))
        if not codes or land_use is None or area is None:
            return None  # nothing given, or the parcel's codes or area are refused already
        if codes != land_use.split("+"):
            self.reject(no, "land_use_areas", f"the parts name {'+'.join(codes)}; the "
                        f"parcel's purposes are {land_use}, in that order", source)
            return None
        total = sum(areas)
        if abs(total - area) > PART_TOLERANCE_M2 * len(areas) + 1e-6:
            self.reject(no, "land_use_areas", f"the parts add up to {total:,.1f} m², not "
                        f"the stated {area:,.1f} m² (within {PART_TOLERANCE_M2} m² a part)",
                        source)
            return None
        return ";".join(f"{a:.1f}" for a in areas) if len(areas) > 1 else None


ATTRIBUTE_COLUMNS = [c for c in STAGE_COLUMNS if c not in ("wkb", "computed_area_m2",
                                                           "source_srid", "scale",
                                                           "scale_stated")]
TEXT_FIELDS = ("address", "owner_name", "owner_id_number", "certificate_serial")


def check_row(rows: ParcelChecker, no: int, rec: dict) -> dict:
    """Every attribute rule for one feature: its stage values, its issues into ``rows``.

    The reference implementation of the rules: rows the column-wise fast path cannot vouch
    for come here, so each message is produced by this one piece of code.
    """
    ref = rows.ref
    commune_code = rows.required(no, "commune_code", rec.get("commune_code"), parse_code, 5)
    commune = ref.communes.get(commune_code) if commune_code else None
    if commune_code and commune is None:
        rows.reject(no, "commune_code", "not a commune code of the GSO catalogue "
                                        "(pre-2025 units)", commune_code)
    land_use, land_use_source = rows.land_use(no, rec.get("land_use"))
    area = rows.stated_area(no, rec.get("area_m2"), required=True)
    owner_name = rows.text(no, "owner_name", rec.get("owner_name"))
    owner_id = rows.text(no, "owner_id_number", rec.get("owner_id_number"))
    serial = rows.text(no, "certificate_serial", rec.get("certificate_serial"))
    owner_kind = rows.owner_kind(no, rec.get("owner_kind"))
    if (owner_id or serial) and not owner_name:
        rows.reject(no, "owner_name", "an ID number or certificate is given without "
                                      "the owner's name")
    if not is_blank(rec.get("owner_kind")) and is_blank(rec.get("owner_name")):
        rows.reject(no, "owner_kind", "a kind of land user is given without the owner's "
                                      "name", rec.get("owner_kind"))
    return {
        "feature_no": no,
        "commune_code": commune_code,
        "district_code": commune.district_code if commune else None,
        "province_code": commune.province_code if commune else None,
        "current_province_code": commune.current_province_code if commune else None,
        "current_commune_code": commune.current_commune_code if commune else None,
        "sheet_no": rows.required(no, "sheet_no", rec.get("sheet_no"), parse_positive_int),
        "parcel_no": rows.required(no, "parcel_no", rec.get("parcel_no"), parse_positive_int),
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
        "owner_kind": owner_kind,
        "land_use_areas": rows.land_use_areas(no, rec.get("land_use_areas"), land_use,
                                              round(area, 1) if area is not None else None),
    }


def _column(attrs: pd.DataFrame, name: str) -> pd.Series:
    """A canonical column, or an all-empty one when the (optional) field is absent."""
    if name in attrs.columns:
        return attrs[name]
    return pd.Series(np.full(len(attrs), None, dtype=object), index=attrs.index)


def _fast_land_use(series: pd.Series, ref: Reference) -> tuple[np.ndarray, np.ndarray,
                                                                np.ndarray]:
    """(codes, source text, ok): the land-use rule once per distinct value, not per row.

    A value is ok only when the rule accepts it without any issue (a superseded 2018 code
    is a repair, reported per feature by ``check_row``).
    """
    n = len(series)
    codes = np.full(n, None, dtype=object)
    sources = np.full(n, None, dtype=object)
    ok = np.zeros(n, dtype=bool)
    texts = texts_column(series, None)
    if not texts.ok.any():
        return codes, sources, ok
    upper = pd.Series(texts.values, dtype=object).where(texts.ok).str.upper()
    verdict: dict[str, str | None] = {}
    for value in pd.unique(upper[texts.ok]):
        scratch = ParcelChecker(ref)
        code, _ = scratch.land_use(0, value)
        verdict[value] = None if scratch.issues else code
    mapped = upper.map(verdict)
    ok = texts.ok & mapped.notna().to_numpy()
    codes[ok] = mapped[ok].to_numpy(dtype=object)
    sources[ok] = upper[ok].to_numpy(dtype=object)
    return codes, sources, ok


def _fast_owner_kind(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kinds, ok, blank): the kind rule once per distinct value, not per row."""
    texts = texts_column(series, None)
    kinds = np.full(len(series), None, dtype=object)
    verdict: dict[str, str | None] = {}
    for value in pd.unique(texts.values[texts.ok]):
        try:
            verdict[value] = party_kind(value)
        except ValueError:
            verdict[value] = None
    mapped = pd.Series(texts.values, dtype=object).map(verdict)
    ok = texts.ok & mapped.notna().to_numpy()
    kinds[ok] = mapped[ok].to_numpy(dtype=object)
    return kinds, ok, texts.blank


def check_attributes(attrs: pd.DataFrame, ref: Reference
                     ) -> tuple[dict[str, np.ndarray], list[Issue]]:
    """Every attribute rule for every feature, column-wise where the values allow it.

    Typical deliveries (numeric fields, plain codes, current land-use codes) are parsed a
    column at a time; any row with a value the fast path is not certain about (a blank
    required field, text numbers with separators, an unknown commune, a superseded code,
    a too-long text...) goes through ``check_row``, which produces the issues. Clean rows
    produce none, so the issues come out in feature order as before.
    """
    n = len(attrs)
    commune = codes_column(_column(attrs, "commune_code"), 5)
    units = {code: (c.district_code, c.province_code, c.current_province_code,
                    c.current_commune_code) for code, c in ref.communes.items()}
    unknown = (None, None, None, None)
    looked_up = [units.get(c, unknown) if c is not None else unknown
                 for c in commune.values.tolist()]
    known = np.array([u is not unknown for u in looked_up], dtype=bool)
    land_use, land_use_source, land_use_ok = _fast_land_use(_column(attrs, "land_use"), ref)
    area = numbers_column(_column(attrs, "area_m2"))
    with np.errstate(invalid="ignore"):
        area_ok = area.ok & (area.values > 0)
    sheet = positive_ints_column(_column(attrs, "sheet_no"))
    parcel = positive_ints_column(_column(attrs, "parcel_no"))
    legal = numbers_column(_column(attrs, "legal_area_m2"))
    texts = {f: texts_column(_column(attrs, f), MAX_TEXT.get(f)) for f in TEXT_FIELDS}
    cert_date = dates_column(_column(attrs, "certificate_date"))
    kinds, kind_ok, kind_blank = _fast_owner_kind(_column(attrs, "owner_kind"))
    owner_orphan = ((~texts["owner_id_number"].blank | ~texts["certificate_serial"].blank
                     | ~kind_blank) & texts["owner_name"].blank)
    # Per-purpose areas are checked row by row (against the row's codes and area): only
    # mixed-use parcels carry them.
    areas_given = ~texts_column(_column(attrs, "land_use_areas"), None).blank
    ok = (commune.ok & known & land_use_ok & area_ok & sheet.ok & parcel.ok
          & (legal.ok | legal.blank) & (cert_date.ok | cert_date.blank) & ~owner_orphan
          & (kind_ok | kind_blank) & ~areas_given)
    for col in texts.values():
        ok &= col.ok | col.blank

    # Numbers stay in float arrays (NaN: none): a Python object per cell would cost ~30
    # bytes a row each at a million rows.
    cols: dict[str, np.ndarray] = {
        "feature_no": np.arange(1, n + 1),
        "commune_code": commune.values,
        "sheet_no": sheet.values,
        "parcel_no": parcel.values,
        "area_m2": np.array([round(v, 1) for v in area.values.tolist()], dtype=float),
        "legal_area_m2": np.where(legal.ok, legal.values, np.nan),
        "land_use": land_use,
        "land_use_source": land_use_source,
        "certificate_date": cert_date.values,
        **{f: c.values for f, c in texts.items()},
        "owner_kind": kinds,
        "land_use_areas": np.full(n, None, dtype=object),
    }
    for k, name in enumerate(("district_code", "province_code", "current_province_code",
                              "current_commune_code")):
        cols[name] = np.array([u[k] for u in looked_up], dtype=object) if n else \
            np.full(0, None, dtype=object)

    rows = ParcelChecker(ref)
    slow = np.flatnonzero(~ok)
    if len(slow):
        for i, rec in zip(slow.tolist(), attrs.iloc[slow].to_dict("records"), strict=True):
            for name, value in check_row(rows, i + 1, rec).items():
                if value is None and cols[name].dtype.kind == "f":
                    value = np.nan
                cols[name][i] = value
    return cols, rows.issues


def parse_scale(value: object) -> int:
    """A scale denominator: 500, "500", "1:500" or "1/500"."""
    text_ = str(value).strip().replace(" ", "")
    if text_.startswith(("1:", "1/")):
        text_ = text_[2:]
    scale = parse_positive_int(text_)
    if scale not in SCALES:
        raise ValueError(f"not a cadastral map scale (1:{', 1:'.join(map(str, SCALES))})")
    return scale


def sheet_scales(attrs: pd.DataFrame, out: pd.DataFrame, ref: Reference, options: Options
                 ) -> tuple[np.ndarray, np.ndarray, list[Issue]]:
    """Each feature's map scale and where it came from: the feature's own ``scale``, else
    the delivery's for its sheet (sidecar ``sheet_scales``), else the delivery's
    (``scale``), else what an earlier delivery recorded for the sheet, else the default
    for the kind of unit (``DEFAULT_SCALE``). Column-wise: a million features cost
    a few dictionary look-ups each."""
    rows = RowChecker()
    n = len(out)
    scales = np.zeros(n, dtype=np.int64)
    source = np.full(n, "", dtype=object)

    def fill(values: pd.Series | np.ndarray, why: str) -> None:
        values = pd.to_numeric(pd.Series(values), errors="coerce").fillna(0).to_numpy()
        take = (scales == 0) & (values > 0)
        scales[take] = values[take]
        source[take] = why

    given = _column(attrs, "scale").tolist()
    own = np.zeros(n)
    for i in (i for i, v in enumerate(given) if not is_blank(v)):
        own[i] = rows.optional(i + 1, "scale", given[i], parse_scale) or 0
    fill(own, "the feature")
    sheet = pd.Series(out["sheet_no"].to_numpy(dtype=float, na_value=np.nan))
    fill(sheet.map(options.sheet_scales), "the delivery's sheet")
    if options.scale:
        fill(np.full(n, options.scale), "the delivery")
    commune = pd.Series(out["commune_code"].to_numpy(dtype=object))
    if ref.sheet_scales:
        recorded = {f"{c}|{s}": v for (c, s), v in ref.sheet_scales.items()}
        key = commune.astype(str) + "|" + sheet.map(lambda v: "" if v != v else str(int(v)))
        fill(key.map(recorded), "the recorded sheet")
    kind = commune.map({code: c.kind for code, c in ref.communes.items()}).fillna("commune")
    rest = scales == 0
    scales[rest] = kind[rest].map(DEFAULT_SCALE).to_numpy()
    source[rest] = ("the default for a " + kind[rest]).to_numpy()
    return scales, source, rows.issues


def parent_refs(attrs: pd.DataFrame, out: pd.DataFrame) -> tuple[pd.DataFrame, list[Issue]]:
    """The parcels each changed parcel came from, by their old numbers: ``old_parcel_no``
    ("12", several as "12, 13", or "5/12; 5/13" with their sheets), ``old_sheet_no`` for
    numbers without one (else the parcel's own sheet), ``old_commune_code`` (else its own
    commune). One row per (feature, parent), with the change's kind and date as the
    delivery states them (``change_kind``, ``change_date``: kept with the child's event;
    the kind the platform records is derived from the links)."""
    rows = RowChecker(MAX_TEXT)
    found: list[tuple] = []
    old_parcels = _column(attrs, "old_parcel_no").tolist()
    kinds = _column(attrs, "change_kind").tolist()
    dates = _column(attrs, "change_date").tolist()
    old_sheets = _column(attrs, "old_sheet_no").tolist()
    old_communes = _column(attrs, "old_commune_code").tolist()
    for i in np.flatnonzero([not is_blank(v) for v in old_parcels]).tolist():
        no = i + 1
        commune = out.at[i, "commune_code"]
        if not is_blank(old_communes[i]):
            commune = rows.optional(no, "old_commune_code", old_communes[i],
                                    lambda v: parse_code(v, 5))
        sheet = out.at[i, "sheet_no"]
        if not is_blank(old_sheets[i]):
            sheet = rows.optional(no, "old_sheet_no", old_sheets[i], parse_positive_int)
        kind = rows.text(no, "change_kind", kinds[i])
        changed_on = rows.optional(no, "change_date", dates[i], parse_date)
        value = str(old_parcels[i]).strip()
        if isinstance(old_parcels[i], float) and old_parcels[i] == int(old_parcels[i]):
            value = str(int(old_parcels[i]))
        for token in (t for t in OLD_SPLIT.split(value) if t):
            match = OLD_REF.match(token.replace(" ", ""))
            if match is None:
                rows.reject(no, "old_parcel_no", "old numbers are parcel numbers, or "
                            "sheet/parcel, separated by ',' or ';'", value)
                break
            parent_sheet = int(match.group(1)) if match.group(1) else sheet
            if commune is None or parent_sheet is None or parent_sheet != parent_sheet:
                continue  # the parcel's own commune or sheet is rejected already
            found.append((no, commune, int(parent_sheet), int(match.group(2)), kind,
                          changed_on.isoformat() if changed_on else None))
    frame = pd.DataFrame(found, columns=["feature_no", "commune_code", "sheet_no",
                                         "parcel_no", "change_kind", "change_date"])
    return frame.drop_duplicates(ignore_index=True), rows.issues


KEY_COLUMNS = ["commune_code", "sheet_no", "parcel_no"]
INT_MAX = 2**31 - 1  # the stage's (and the parcel table's) int columns


def check_batch(frame: pd.DataFrame, file: str, source_crs: CRS, ref: Reference,
                mapping: FieldMapping, options: Options, first_no: int = 1
                ) -> tuple[pd.DataFrame, list[Issue], pd.DataFrame]:
    """Validate a batch of a file's features, ``first_no`` the number of its first
    feature; return (every row, a ``rejected`` column saying which are refused, issues,
    the kept rows' parents by old number).

    Rejected rows keep only their feature number, natural key and district: the stage
    holds them
    so that the in-file duplicate check, which needs every batch, is one query over the
    stage (``cadastre.merge.duplicate_keys``) instead of a Python set over the file.
    """
    attrs = mapping.select(frame, file)
    n = len(frame)
    feature_nos = np.arange(1, n + 1)
    cols, issues = check_attributes(attrs, ref)
    out = pd.DataFrame({c: cols[c] for c in ATTRIBUTE_COLUMNS})
    del cols  # the frame holds its own copy

    # Geometry: validity and type in the source CRS (repairs keep the source's precision).
    geoms, geom_ok, geom_issues = check_polygons(np.asarray(frame.geometry.values, dtype=object),
                                                 feature_nos, multi=False)
    issues += geom_issues

    # Reproject to the storage CRS and check it is in Vietnam. Whether it is inside its
    # district and commune is decided on the stage, by their boundaries where loaded
    # (``cadastre.location``), not by the district's bounding box here.
    wgs, located, where_issues = locate(
        geoms, geom_ok, feature_nos, source_crs, out["district_code"].to_numpy(), {},
        lambda i, code: "")
    issues += where_issues

    # Area in the province's official TM-3 CRS vs the stated area.
    computed = np.full(n, np.nan)
    province = out["province_code"].to_numpy()
    for code in pd.unique(province[located & pd.notna(province)]):
        # In slices: measuring projects a copy of every geometry.
        members = np.flatnonzero(located & (province == code))
        for start in range(0, len(members), AREA_SLICE_ROWS):
            sel = members[start:start + AREA_SLICE_ROWS]
            computed[sel] = metric_areas(geoms[sel], wgs[sel], source_crs,
                                         ref.province_epsg.get(code))
    stated = out["area_m2"].to_numpy(dtype=float, na_value=np.nan)
    scales, scale_source, scale_issues = sheet_scales(attrs, out, ref, options)
    issues += scale_issues
    limits = permissible_area_error(stated, scales)
    issues += area_issues(
        computed, stated, located, feature_nos, limits,
        lambda i: f"the {limits[i]:,.2f} m² the cadastral mapping regulation allows for "
                  f"{stated[i]:,.1f} m² on a 1:{scales[i]} sheet ({scale_source[i]}'s "
                  "scale; ΔP = 0.0004·M·√P, TT 25/2014/TT-BTNMT, or the stated value's "
                  "rounding)")
    parents, parent_issues = parent_refs(attrs, out)
    issues += parent_issues

    out["computed_area_m2"] = np.round(computed, 1)
    out["source_srid"] = srid_of(source_crs)
    out["scale"] = scales
    # The scale the delivery itself states: recorded on the map sheet for later deliveries.
    stated_scale = np.isin(scale_source, ["the feature", "the delivery's sheet",
                                          "the delivery"])
    out["scale_stated"] = np.where(stated_scale, scales, np.nan)
    # The WGS84 geometries themselves: COPY encodes them (as MultiPolygon EWKB, SRID 4326)
    # a chunk at a time, instead of holding a hex string per feature next to them.
    has_geom = located & ~np.isnan(computed)
    out["wkb"] = np.where(has_geom, wgs, None)
    rejected = np.isin(out["feature_no"].to_numpy(),
                       [i.feature_no for i in issues if i.severity == "reject"])
    out = out[STAGE_COLUMNS]
    if rejected.any():  # only the key of a refused row is staged (see above)
        rest = [c for c in STAGE_COLUMNS
                if c not in ("feature_no", "district_code", *KEY_COLUMNS)]
        out.loc[rejected, rest] = None
        for name in ("sheet_no", "parcel_no"):  # a key no int column holds is no key
            values = pd.to_numeric(out[name], errors="coerce")
            out.loc[values > INT_MAX, name] = np.nan
    out["rejected"] = rejected
    for name in ("sheet_no", "parcel_no"):  # whole numbers where none is missing
        if out[name].notna().all():
            out[name] = out[name].astype(np.int64)
    parents = parents[~parents["feature_no"].isin(out.loc[rejected, "feature_no"])]
    if first_no != 1:  # numbered from the file's start, not the batch's
        shift = first_no - 1
        out["feature_no"] += shift
        parents = parents.assign(feature_no=parents["feature_no"] + shift)
        issues = [replace(i, feature_no=i.feature_no + shift) if i.feature_no else i
                  for i in issues]
    return out, issues, parents.reset_index(drop=True)


def prepare_parcels(frame: pd.DataFrame, file: str, source_crs: CRS, ref: Reference,
                    mapping: FieldMapping, options: Options
                    ) -> tuple[pd.DataFrame, list[Issue], pd.DataFrame]:
    """Validate a whole (small) frame's features, e.g. one written through the API;
    return (rows to stage, issues, their parents by old number). Files are validated
    batch by batch (``check_batch``) and their duplicate keys found on the stage."""
    rows, issues, parents = check_batch(frame, file, source_crs, ref, mapping, options)
    dups = duplicate_keys(rows)
    issues += dups
    keep = ~rows["rejected"] & ~rows["feature_no"].isin([i.feature_no for i in dups])
    staged = rows.loc[keep, STAGE_COLUMNS].reset_index(drop=True)
    for name in ("sheet_no", "parcel_no"):  # whole numbers once the rejects are gone
        if len(staged) and staged[name].notna().all():
            staged[name] = staged[name].astype(np.int64)
    parents = parents[parents["feature_no"].isin(staged["feature_no"])]
    return staged, issues, parents.reset_index(drop=True)


def duplicate_keys(out: pd.DataFrame) -> list[Issue]:
    """Duplicate natural keys within a frame: all copies are rejected (which is right?).
    The same rule as ``cadastre.merge.duplicate_keys`` on a stage, worded the same.

    Found with one ``duplicated`` over the key columns; only the duplicated rows are
    grouped, in order of first appearance, so the messages read as before.
    """
    keys = out[["commune_code", "sheet_no", "parcel_no", "feature_no"]]
    complete = keys[["commune_code", "sheet_no", "parcel_no"]].notna().all(axis=1)
    keys = keys[complete]
    dup = keys[keys.duplicated(["commune_code", "sheet_no", "parcel_no"], keep=False)]
    issues: list[Issue] = []
    for key, group in dup.groupby(["commune_code", "sheet_no", "parcel_no"], sort=False):
        nos = [int(v) for v in group["feature_no"].tolist()]
        for no in nos:
            others = ", ".join(str(o) for o in nos if o != no)
            issues.append(Issue(no, "parcel_no",
                                f"duplicate key commune {key[0]} sheet {int(key[1])} "
                                f"parcel {int(key[2])} (also feature {others})"))
    return issues
