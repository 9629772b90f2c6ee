"""``/vendor/...``: the browser libraries the HTML pages use, served by the platform.

Why: pygeoapi's pages and the API docs load Bootstrap, Leaflet and Swagger UI from CDNs,
so on a land office's network without internet they were unstyled and their maps blank.
The files are vendored from npm by ``scripts/vendor_pages.py`` (with their licences) and
the templates in ``templates/`` point here. A plain route rather than a mounted
``StaticFiles`` app: it keeps every request inside ``static/vendor`` and sets the caching.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

VENDOR = (Path(__file__).parent / "static" / "vendor").resolve()
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
               ".png": "image/png", ".svg": "image/svg+xml"}
# a vendored file changes only with its version (a new path would be safer still, but the
# templates name the files as the packages do): browsers may keep it a day
CACHE = {"Cache-Control": "public, max-age=86400"}


def assets_router(openapi_url: str, title: str) -> APIRouter:
    """The vendored files, and the API docs page (``/api-docs``) built on them."""
    router = APIRouter()

    @router.api_route("/vendor/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    def vendored(path: str) -> FileResponse:
        target = (VENDOR / path).resolve()
        if not target.is_relative_to(VENDOR) or not target.is_file() \
                or target.suffix not in MEDIA_TYPES:
            raise HTTPException(404, "not found")
        return FileResponse(target, media_type=MEDIA_TYPES[target.suffix], headers=CACHE)

    @router.get("/api-docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        """FastAPI's Swagger UI page, with its scripts from ``/vendor`` (relative URLs, so
        it works behind a proxy that mounts us below a prefix as well)."""
        return get_swagger_ui_html(
            openapi_url=openapi_url.lstrip("/"), title=title,
            swagger_js_url="vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="vendor/swagger-ui/favicon-32x32.png")

    return router
