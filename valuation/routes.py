"""``GET /valuation/coverage/price-surface-<d>.png``: the price surface's colour preview.

Why a route of ours: a district's surface at ~2 m is millions of pixels, far too many for a
browser to draw from CoverageJSON; the planner's map overlays this small PNG (linked from
the coverage collection as ``rel=preview``, same extent) instead. The data itself is the
OGC API coverage ``price-surface-<d>`` (pygeoapi, GeoTIFF or CoverageJSON).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from landplatform.settings import get_settings
from valuation.surface import preview_path

router = APIRouter(tags=["valuation"])


@router.get("/valuation/coverage/price-surface-{district}.png", response_class=FileResponse,
            summary="Colour preview of a district's price surface (PNG)")
def price_surface_preview(district: str) -> FileResponse:
    if not (len(district) == 3 and district.isascii() and district.isdigit()):
        raise HTTPException(404, "not found")
    path = preview_path(get_settings().var_dir, district)
    if not path.is_file():
        raise HTTPException(404, f"no price surface for district {district}")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-cache"})
