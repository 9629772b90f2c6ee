"""Parse the values land offices write: Vietnamese number formats, codes stored as numbers.

Shared by every loader (parcels, plans, price tables).
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime

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
    if not text.isdigit() or len(text) > width:
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
