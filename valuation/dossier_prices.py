"""Valuation's figure for the cadastre's changes of land-use purpose: the parcel's parts
priced by the land price table in force, with the valuation's own rules.

Contributed to the cadastre's extension point ``PARCEL_PRICES`` (cadastre/extensions.py)
through valuation's ``Domain.extensions``. It runs the valuation statement
(``valuation.sql.COMPUTE``) for the one parcel, on the dossier's connection, so it prices
the parcel as it stands in that transaction: the cadastre prices it before and after the
change and states the difference as the fee basis.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import text
from sqlalchemy.engine import Connection

from cadastre.extensions import PartPrice, Prices
from valuation.engine import compute_params, table_for
from valuation.sql import COMPUTE


def parcel_prices(conn: Connection, district: str, uid: int, on_date: date) -> Prices | None:
    """Every land-use part of the parcel priced (unit price after the rules' factors);
    None when the parcel's province has no table in force or no TM-3 CRS."""
    parcel = conn.execute(text("""
        SELECT p.province_code, p.current_province_code, d.tm3_epsg
          FROM publish.parcels p JOIN publish.districts d USING (district_code)
         WHERE p.id = :uid AND p.district_code = :d
    """), {"uid": uid, "d": district}).mappings().first()
    if parcel is None or parcel["tm3_epsg"] is None:
        return None
    provinces = [p for p in (parcel["province_code"], parcel["current_province_code"]) if p]
    table = table_for(conn, provinces, on_date)
    if table is None:
        return None
    rows = conn.execute(text(COMPUTE), compute_params(
        district, table, int(parcel["tm3_epsg"]), on_date, uid)).mappings().all()
    parts = []
    for r in rows:
        unit = (float(r["unit_price"]) * float(r["factor"])
                if r["unit_price"] is not None and r["factor"] is not None else None)
        parts.append(PartPrice(r["land_use_code"],
                               float(r["area_m2"]) if r["area_m2"] is not None else None,
                               unit, float(r["value"]) if r["value"] is not None else None,
                               (r["explanation"] or {}).get("reason")))
    return Prices(f"{table.table_code} v{table.version}", parts)
