"""Parse the values land offices write: Vietnamese number formats, codes stored as numbers.

Shared by every loader (parcels, plans, price tables).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

_GROUPED = re.compile(r"^-?\d{1,3}(\.\d{3})+$")


def is_blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if value is pd.NaT:
        return True
    return isinstance(value, str) and not value.strip()


def parse_number(value: object) -> float:
    """A number from a cell: 1200000, "1.200.000", "1.234,5", "1234.5", "1 200 000".

    Vietnamese usage is '.' for thousands and ',' for decimals; a value with both uses the
    last one as the decimal separator. Raises ValueError with the reason.
    """
    if isinstance(value, bool):
        raise ValueError("a yes/no value is not a number")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("not a finite number")
        return float(value)
    text = str(value).strip().replace("\u00a0", "").replace(" ", "")
    if not text:
        raise ValueError("empty")
    if "," in text and "." in text:
        if text.rfind(",") > text.rfind("."):
            text = text.replace(".", "").replace(",", ".")
        else:
            text = text.replace(",", "")
    elif "," in text:
        text = text.replace(",", ".") if text.count(",") == 1 else text.replace(",", "")
    elif _GROUPED.match(text) and text.count(".") > 1:
        text = text.replace(".", "")
    try:
        number = float(text)
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def parse_positive_int(value: object) -> int:
    number = parse_number(value)
    if number != int(number):
        raise ValueError("not a whole number")
    if number <= 0:
        raise ValueError("must be greater than 0")
    return int(number)


def parse_code(value: object, width: int) -> str:
    """A fixed-width numeric code ('00001'); tolerates codes a DBF stored as numbers."""
    if isinstance(value, float) and value == int(value):
        value = int(value)
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > width:
        raise ValueError(f"not a {width}-digit code")
    return text.zfill(width)


def parse_date(value: object) -> date:
    if isinstance(value, datetime | pd.Timestamp):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%Y/%m/%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError("not a date (use YYYY-MM-DD or DD/MM/YYYY)")


# --- Whole columns at once --------------------------------------------------------------
# A delivery of a million features cannot afford a Python call per cell. These parse a
# column with numpy/pandas and say, per row, whether the scalar parser above would accept
# the value *and give the same result*; rows they are unsure about (text numbers with
# separators, odd types, bad values) are left to the scalar parsers, so every message and
# every accepted value stays exactly what the row-by-row rules produce.
_PLAIN_INT = r"[0-9]+"
_PLAIN_DECIMAL = r"[0-9]+(?:\.[0-9]+)?"
_ISO_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"


@dataclass(frozen=True)
class Column:
    """A parsed column: ``values`` where ``ok``; ``blank`` where the cell is empty.

    ``ok`` and ``blank`` never overlap; a row in neither needs the scalar parser.
    """

    values: np.ndarray
    ok: np.ndarray
    blank: np.ndarray


def _is_text_dtype(series: pd.Series) -> bool:
    """Object columns, and pandas string columns whose missing value is NaN (as read)."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        return True
    return isinstance(dtype, pd.StringDtype) and dtype.na_value is not pd.NA


@dataclass(frozen=True)
class _Distinct:
    """A text-like column as its distinct values: each rule runs once per value.

    ``codes`` maps a row to its value (-1: missing cell); ``text`` is each value stripped,
    None for values that are not text (numbers, dates in an object column).
    """

    codes: np.ndarray
    text: np.ndarray

    @classmethod
    def of(cls, series: pd.Series) -> _Distinct:
        codes, uniques = pd.factorize(series.astype(object))
        text = np.array([v.strip() if type(v) is str else None for v in uniques],
                        dtype=object)
        return cls(np.asarray(codes), text)

    def rows(self, per_value: np.ndarray, missing: object) -> np.ndarray:
        """A per-value array spread over the rows (``missing`` for missing cells)."""
        if not len(per_value):
            return np.full(len(self.codes), missing, dtype=per_value.dtype)
        out = per_value[self.codes]
        out[self.codes < 0] = missing
        return out

    def blank(self) -> np.ndarray:
        return self.rows(np.array([t == "" for t in self.text], dtype=bool), True)

    def matching(self, pattern: str) -> np.ndarray:
        """Per value: text that matches ``pattern`` as a whole."""
        regex = re.compile(pattern)
        return np.array([t is not None and regex.fullmatch(t) is not None
                         for t in self.text], dtype=bool)


def numbers_column(series: pd.Series) -> Column:
    """``parse_number`` for a whole column (numeric dtypes, plain ``123.4`` text)."""
    n = len(series)
    kind = series.dtype.kind
    if kind in "iuf" and not isinstance(series.dtype, pd.api.extensions.ExtensionDtype):
        values = series.to_numpy(dtype=float)
        blank = np.isnan(values)
        return Column(values, np.isfinite(values), blank)
    values = np.full(n, np.nan)
    if not _is_text_dtype(series):
        return Column(values, np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))
    distinct = _Distinct.of(series)
    good = distinct.matching(_PLAIN_DECIMAL)
    parsed = np.array([float(t) if g else np.nan for t, g in zip(distinct.text, good,
                                                                  strict=True)])
    good &= np.isfinite(parsed)
    return Column(distinct.rows(parsed, np.nan), distinct.rows(good, False), distinct.blank())


def positive_ints_column(series: pd.Series) -> Column:
    """``parse_positive_int`` for a whole column; values as float (NaN where not ok)."""
    col = numbers_column(series)
    with np.errstate(invalid="ignore"):
        ok = col.ok & (col.values > 0) & (col.values == np.floor(col.values))
    if series.dtype.kind not in "iuf" and _is_text_dtype(series):
        # text: only digits, so float() gives what the scalar path gives
        distinct = _Distinct.of(series)
        ok &= distinct.rows(distinct.matching(_PLAIN_INT), False)
    return Column(np.where(ok, col.values, np.nan), ok, col.blank)


def codes_column(series: pd.Series, width: int) -> Column:
    """``parse_code`` for a whole column: zero-padded text codes (object array)."""
    n = len(series)
    values = np.full(n, None, dtype=object)
    kind = series.dtype.kind
    if kind in "iuf" and not isinstance(series.dtype, pd.api.extensions.ExtensionDtype):
        numbers = series.to_numpy(dtype=float)
        blank = np.isnan(numbers)
        with np.errstate(invalid="ignore"):
            ok = (np.isfinite(numbers) & (numbers >= 0) & (numbers < 10 ** width)
                  & (numbers == np.floor(numbers)))
        values[ok] = pd.Series(numbers[ok].astype(np.int64)).astype(str).str.zfill(
            width).to_numpy(dtype=object)
        return Column(values, ok, blank)
    if not _is_text_dtype(series):
        return Column(values, np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))
    distinct = _Distinct.of(series)
    good = distinct.matching(f"[0-9]{{1,{width}}}")
    padded = np.array([t.zfill(width) if g else None for t, g in zip(distinct.text, good,
                                                                      strict=True)],
                      dtype=object)
    return Column(distinct.rows(padded, None), distinct.rows(good, False), distinct.blank())


def texts_column(series: pd.Series, limit: int | None) -> Column:
    """Stripped text (None when blank); not ok when longer than ``limit`` or not text."""
    n = len(series)
    values = np.full(n, None, dtype=object)
    if not _is_text_dtype(series):
        blank = series.isna().to_numpy()
        return Column(values, np.zeros(n, dtype=bool), blank)
    distinct = _Distinct.of(series)
    good = np.array([t is not None and t != "" and (not limit or len(t) <= limit)
                     for t in distinct.text], dtype=bool)
    kept = np.where(good, distinct.text, None)
    return Column(distinct.rows(kept, None), distinct.rows(good, False), distinct.blank())


def dates_column(series: pd.Series) -> Column:
    """``parse_date`` for a whole column: datetimes, and ISO ``YYYY-MM-DD`` text."""
    n = len(series)
    values = np.full(n, None, dtype=object)
    if series.dtype.kind == "M":
        blank = series.isna().to_numpy()
        ok = ~blank
        values[ok] = series[ok].dt.date.to_numpy(dtype=object)
        return Column(values, ok, blank)
    if not _is_text_dtype(series):
        return Column(values, np.zeros(n, dtype=bool), series.isna().to_numpy())
    distinct = _Distinct.of(series)
    good = distinct.matching(_ISO_DATE)
    dates = np.full(len(good), None, dtype=object)
    for k in np.flatnonzero(good):
        try:
            dates[k] = datetime.strptime(distinct.text[k], "%Y-%m-%d").date()
        except ValueError:
            good[k] = False
    return Column(distinct.rows(dates, None), distinct.rows(good, False), distinct.blank())
