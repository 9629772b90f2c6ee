"""``GET /cadastre/search?q=``: what a map's search box asks the cadastre, in one request.

A land officer types a parcel's numbers (``00001.1.5``, ``00001 1 5``, or ``1/5`` for
sheet 1 parcel 5 within a district), a commune or district code, or words of a unit's
name or of an address, with or without Vietnamese marks. The answer is a GeoJSON
FeatureCollection of hits, best first, each with a label, its kind (``parcel``,
``commune``, ``district``), the numbers or code to open it by, a point inside it and its
bbox to zoom to. Read from ``publish.*`` as the public role (no owner, no officer);
names and addresses are compared through ``public.lis_unaccent`` (migration 0015), the
shapes are the low-zoom summaries' (migration 0016).
"""

from __future__ import annotations

import json
import re

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from sqlalchemy import text
from sqlalchemy.engine import Engine

FULL_REF = re.compile(r"^\s*(\d{5})\s*[./\s,-]\s*(\d{1,9})\s*[./\s,-]\s*(\d{1,9})\s*$")
SHEET_PARCEL = re.compile(r"^\s*(\d{1,9})\s*[./\s,-]\s*(\d{1,9})\s*$")
CODE = re.compile(r"^\s*(\d{3}|\d{5})\s*$")
MAX_LIMIT = 50

PARCELS = """
    SELECT 'parcel' AS kind, parcel_ref AS ref, district_code, commune_code, sheet_no,
           parcel_no, primary_land_use, area_m2, address,
           ST_AsGeoJSON(ST_PointOnSurface(geom), 7) AS point,
           ARRAY[ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)] AS bbox
      FROM publish.parcels
     WHERE {where} AND (CAST(:district AS text) IS NULL OR district_code = :district)
     ORDER BY commune_code, sheet_no, parcel_no
     LIMIT :limit
"""
UNITS = """
    SELECT level AS kind, CASE WHEN level = 'commune' THEN commune_code
                               ELSE district_code END AS ref,
           district_code, commune_code, unit_name, parcel_count, primary_land_use,
           ST_AsGeoJSON(ST_PointOnSurface(geom), 7) AS point,
           ARRAY[ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)] AS bbox
      FROM publish.parcel_summary_{level}
     WHERE {where} AND (CAST(:district AS text) IS NULL OR district_code = :district)
     ORDER BY unit_name, district_code, commune_code
     LIMIT :limit
"""
NAME = "public.lis_unaccent(lower(unit_name)) LIKE '%' || public.lis_unaccent(lower(:q)) || '%'"
ADDRESS = "public.lis_unaccent(lower(address)) LIKE '%' || public.lis_unaccent(lower(:q)) || '%'"


def _like_escape(q: str) -> str:
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _feature(row: dict) -> dict:
    props = {k: (float(v) if k == "area_m2" and v is not None else v)
             for k, v in row.items() if k not in ("point", "bbox")}
    if row["kind"] == "parcel":
        props["label"] = (f"Thửa {row['parcel_no']}, tờ {row['sheet_no']}, xã "
                          f"{row['commune_code']} / parcel {row['ref']}"
                          + (f" ({row['address']})" if row.get("address") else ""))
    else:
        level = "Xã/phường" if row["kind"] == "commune" else "Quận/huyện"
        props["label"] = (f"{level} {row['unit_name'] or row['ref']} ({row['ref']}), "
                          f"{row['parcel_count']} thửa / parcels")
    return {"type": "Feature", "id": f"{row['kind']}:{row['ref']}",
            "geometry": json.loads(row["point"]), "bbox": list(row["bbox"]),
            "properties": props}


def search(engine: Engine, q: str, district: str | None, limit: int) -> list[dict]:
    """The hits for ``q``: exact numbers first, then codes, then names and addresses."""
    params = {"district": district, "limit": limit}
    statements: list[tuple[str, dict]] = []
    if m := FULL_REF.match(q):
        statements.append((PARCELS.format(
            where="commune_code = :c AND sheet_no = :s AND parcel_no = :p"),
            {"c": m[1], "s": int(m[2]), "p": int(m[3])}))
    elif m := SHEET_PARCEL.match(q):
        statements.append((PARCELS.format(where="sheet_no = :s AND parcel_no = :p"),
                           {"s": int(m[1]), "p": int(m[2])}))
    elif m := CODE.match(q):
        level = "commune" if len(m[1]) == 5 else "district"
        statements.append((UNITS.format(level=level, where=f"{level}_code = :code"),
                           {"code": m[1]}))
    else:
        words = _like_escape(q.strip())
        statements += [(UNITS.format(level="district", where=NAME), {"q": words}),
                       (UNITS.format(level="commune", where=NAME), {"q": words}),
                       (PARCELS.format(where=f"address IS NOT NULL AND {ADDRESS}"),
                        {"q": words})]
    hits: list[dict] = []
    with engine.connect() as conn:
        for sql, extra in statements:
            left = limit - len(hits)
            if left <= 0:
                break
            rows = conn.execute(text(sql), {**params, **extra, "limit": left}).mappings()
            hits += [_feature(dict(r)) for r in rows]
    return hits


def search_router(engine: Engine) -> APIRouter:
    router = APIRouter()

    @router.get("/cadastre/search", tags=["cadastre"])
    def search_route(q: str = Query(min_length=1, max_length=200,
                                    description="parcel numbers (00001.1.5, or 1/5 with "
                                                "district=), a commune/district code, or "
                                                "words of a name or an address"),
                     district: str | None = Query(None, pattern=r"^\d{3}$"),
                     limit: int = Query(10, ge=1, le=MAX_LIMIT)) -> Response:
        """Parcels, communes and districts matching ``q`` (a GeoJSON FeatureCollection,
        best first; each hit has a label, a point and a bbox to zoom to)."""
        if not q.strip() or any(ord(c) < 32 for c in q):  # PostgreSQL refuses NUL
            raise HTTPException(422, "q must be words or numbers, without control "
                                     "characters")
        hits = search(engine, q, district, limit)
        body = {"type": "FeatureCollection", "query": q, "numberReturned": len(hits),
                "features": hits}
        return Response(json.dumps(body, default=str, ensure_ascii=False),
                        media_type="application/geo+json")

    return router
