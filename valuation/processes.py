"""OGC API Process ``parcel-valuation``: value one parcel by the table valid on a date.

It runs the engine's own statement (``valuation.sql.COMPUTE``) for a single parcel, under
the API's read-only role (the statement reads only ``publish.*``), so its answer is what a
valuation run of the district stores for that parcel, with nothing written.

Inputs: ``parcel_id`` (the parcel's id, as in the ``parcels`` and ``parcel-values``
collections) or ``commune_code`` + ``sheet_no`` + ``parcel_no``; ``date`` (YYYY-MM-DD,
default: today, or the start of the latest table when none covers today).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from landplatform.publish.engine import get_public_engine
from valuation.engine import (
    ENGINE_VERSION,
    compute_params,
    default_date,
    no_jit,
    table_for,
)
from valuation.sql import COMPUTE

COMMUNE = re.compile(r"^\d{5}$")

PROCESS_METADATA = {
    "version": "1.0.0",
    "id": "parcel-valuation",
    "title": {"en": "Parcel valuation", "vi": "Định giá thửa đất"},
    "description": {
        "en": "Values one parcel by the provincial land price table valid on a date: each "
              "land-use part's unit price (road segment and position, value zone, or area "
              "class), the adjustments applied (depth layers, two frontages, height "
              "difference, coefficient K) and its value in VND, with an explanation. "
              "Read-only; the same computation as a district valuation run."},
    "jobControlOptions": ["sync-execute"],
    "keywords": ["valuation", "land prices", "bảng giá đất"],
    "links": [],
    "inputs": {
        "parcel_id": {"title": "Parcel id", "description": "id of the parcel in the "
                      "parcels / parcel-values collections",
                      "schema": {"type": "integer", "minimum": 1},
                      "minOccurs": 0, "maxOccurs": 1},
        "commune_code": {"title": "Commune code (MaXa)", "schema": {"type": "string",
                         "pattern": "^[0-9]{5}$"}, "minOccurs": 0, "maxOccurs": 1},
        "sheet_no": {"title": "Map sheet number", "schema": {"type": "integer", "minimum": 1},
                     "minOccurs": 0, "maxOccurs": 1},
        "parcel_no": {"title": "Parcel number", "schema": {"type": "integer", "minimum": 1},
                      "minOccurs": 0, "maxOccurs": 1},
        "date": {"title": "Table date", "schema": {"type": "string", "format": "date"},
                 "minOccurs": 0, "maxOccurs": 1},
    },
    "outputs": {
        "valuation": {"title": "Valuation of the parcel",
                      "schema": {"type": "object", "contentMediaType": "application/json"}},
    },
    "example": {"inputs": {"commune_code": "00001", "sheet_no": 1, "parcel_no": 5,
                           "date": "2026-01-01"}},
}


def _positive_int(data: dict, key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ProcessorExecuteError(user_msg=f"{key} must be a whole number") from None
    if number < 1 or str(number) != str(value).strip():
        raise ProcessorExecuteError(user_msg=f"{key} must be a positive whole number")
    return number


def _json_number(value: object) -> object:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


class ParcelValuationProcessor(BaseProcessor):
    """The parcel-valuation process (synchronous, read-only)."""

    def __init__(self, processor_def: dict) -> None:
        super().__init__(processor_def, PROCESS_METADATA)

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, dict]:
        parcel_id = _positive_int(data, "parcel_id")
        commune = data.get("commune_code")
        sheet, number = _positive_int(data, "sheet_no"), _positive_int(data, "parcel_no")
        if parcel_id is None and not (commune and sheet and number):
            raise ProcessorExecuteError(user_msg="give parcel_id, or commune_code, sheet_no "
                                                 "and parcel_no")
        if commune is not None and not COMMUNE.match(str(commune)):
            raise ProcessorExecuteError(user_msg="commune_code must be 5 digits")
        on_date = None
        if data.get("date") is not None:
            try:
                on_date = date.fromisoformat(str(data["date"]))
            except ValueError:
                raise ProcessorExecuteError(user_msg="date must be YYYY-MM-DD") from None
        try:
            return "application/json", self._value(parcel_id, commune, sheet, number, on_date)
        except DBAPIError as exc:
            raise ProcessorExecuteError(user_msg="the database could not answer; retry "
                                                 "shortly") from exc

    def _value(self, parcel_id: int | None, commune: str | None, sheet: int | None,
               number: int | None, on_date: date | None) -> dict:
        with get_public_engine().begin() as conn:
            no_jit(conn)
            parcel = conn.execute(text("""
                SELECT p.id, p.parcel_ref, p.province_code, p.current_province_code,
                       p.district_code, p.commune_code, p.sheet_no, p.parcel_no, p.land_use,
                       p.area_m2, d.tm3_epsg
                  FROM publish.parcels p
                  LEFT JOIN publish.districts d USING (district_code)
                 WHERE (CAST(:id AS bigint) IS NOT NULL AND p.id = :id)
                    OR (CAST(:id AS bigint) IS NULL AND p.commune_code = :c
                        AND p.sheet_no = :s AND p.parcel_no = :n)
            """), {"id": parcel_id, "c": commune, "s": sheet, "n": number}).mappings().first()
            if parcel is None:
                which = (f"id {parcel_id}" if parcel_id is not None
                         else f"{commune}.{sheet}.{number}")
                raise ProcessorExecuteError(user_msg=f"no current parcel {which}")
            provinces = [p for p in (parcel["province_code"], parcel["current_province_code"])
                         if p]
            when = on_date or default_date(conn, provinces, date.today())
            table = table_for(conn, provinces, when)
            if table is None:
                raise ProcessorExecuteError(user_msg=f"no land price table of province "
                                                     f"{parcel['province_code']} is valid on "
                                                     f"{when}")
            if parcel["tm3_epsg"] is None:
                raise ProcessorExecuteError(user_msg="the parcel's province has no TM-3 CRS")
            rows = conn.execute(text(COMPUTE), compute_params(
                parcel["district_code"], table, int(parcel["tm3_epsg"]), when,
                int(parcel["id"]))).mappings().all()
        parts = sorted((dict(r["explanation"]) for r in rows), key=lambda e: e["seq"])
        values = [r["value"] for r in rows if r["value"] is not None]
        primary = next((r for r in sorted(rows, key=lambda r: r["seq"])), None)
        return {
            "parcel": {k: _json_number(parcel[k]) for k in (
                "id", "parcel_ref", "district_code", "commune_code", "sheet_no", "parcel_no",
                "land_use", "area_m2")},
            "date": when.isoformat(),
            "table_code": table.table_code,
            "table_version": table.version,
            "unit_price": _json_number(primary["unit_price"]) if primary else None,
            "value": _json_number(sum(values)) if values else None,
            "fully_valued": bool(rows) and len(values) == len(rows),
            "parts": parts,
            "engine_version": ENGINE_VERSION,
        }

    def __repr__(self) -> str:
        return f"<ParcelValuationProcessor> {self.name}"
