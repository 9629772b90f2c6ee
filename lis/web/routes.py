"""``GET /map`` (the page) and ``/map/static/...`` (its scripts and styles; MapLibre is at /vendor).

Static files are served by a plain route rather than a mounted ``StaticFiles`` app because
older FastAPI versions drop mounts when a router is included; the route keeps every request
inside ``static/``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

STATIC = (Path(__file__).parent / "static").resolve()
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
               ".html": "text/html; charset=utf-8", ".png": "image/png",
               ".map": "application/json", ".svg": "image/svg+xml"}
# The page changes with the code, vendored files only with their version: revalidate the
# former every time, let browsers keep the latter for a day.
NO_CACHE = {"Cache-Control": "no-cache"}
VENDOR_CACHE = {"Cache-Control": "public, max-age=86400"}

router = APIRouter(tags=["map"])


@router.get("/map", response_class=HTMLResponse, summary="Planner's map (HTML)")
def planner_map() -> HTMLResponse:
    """The planner's map page; it reads everything else from the OGC APIs in the browser."""
    return HTMLResponse((STATIC / "map.html").read_text(encoding="utf-8"), headers=NO_CACHE)


@router.api_route("/map/static/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
def map_static(path: str) -> FileResponse:
    """A file under ``static/`` (404 for anything outside it or missing)."""
    target = (STATIC / path).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file():
        raise HTTPException(404, "not found")
    headers = VENDOR_CACHE if target.is_relative_to(STATIC / "vendor") else NO_CACHE
    return FileResponse(target, media_type=MEDIA_TYPES.get(target.suffix,
                                                           "application/octet-stream"),
                        headers=headers)
