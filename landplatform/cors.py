"""Cross-origin reads: one ASGI middleware around the whole app, so no response escapes it.

Why here and not per route: the features fast lane, the tile routes and Starlette's own
500 handler answer outside the routers, and a map on another origin (MapLibre, OpenLayers,
a developer's page) needs ``Access-Control-Allow-Origin`` on every one of them, 304s and
errors included, or it sees a network error instead of the answer. ``build_app`` puts
this middleware outside Starlette's error middleware (``PlatformApp``).

The policy (docs/SECURITY.md): origins from ``LIS_CORS_ORIGINS`` (``*``: anyone may read,
the default for a public data service; else a list, the matching ``Origin`` is echoed with
``Vary: Origin``); never ``Access-Control-Allow-Credentials``, since the platform uses no
cookies and a token travels in the ``Authorization`` header, which preflights allow.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOW_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = ("Authorization, Content-Type, Accept, Accept-Language, Accept-Crs, "
                 "Content-Crs, If-None-Match, If-Match, If-Modified-Since, If-Range, Range, "
                 "Prefer, X-Request-ID")
# What a browser script may read beyond the CORS-safelisted response headers: paging and
# counts, caching validators, the CRS of a response, tile truncation, ranges of a COG.
EXPOSE_HEADERS = ("Link, ETag, Last-Modified, Content-Crs, OGC-NumberMatched, "
                  "X-Tile-Truncated, Content-Range, Accept-Ranges, Content-Length, "
                  "Content-Encoding, Content-Disposition, Location, Preference-Applied, "
                  "Retry-After, X-Request-ID")
MAX_AGE_S = 3600  # browsers cache a preflight this long (Chromium caps it at two hours)
_OWN = ("access-control-allow-origin", "access-control-allow-credentials",
        "access-control-expose-headers")


def parse_origins(text: str) -> tuple[str, ...]:
    """``LIS_CORS_ORIGINS``: ``*`` or comma-separated origins (``https://host[:port]``)."""
    return tuple(o.strip().rstrip("/") for o in text.split(",") if o.strip())


class CORSMiddleware:
    def __init__(self, app: ASGIApp, origins: Iterable[str]) -> None:
        self.app = app
        origins = tuple(origins)
        self.any = "*" in origins
        self.origins = frozenset(o.lower() for o in origins if o != "*")

    def allowed(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for this request, or None."""
        if self.any:
            return "*"
        if origin and origin.lower() in self.origins:
            return origin
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allow = self.allowed(origin)
        if scope["method"] == "OPTIONS" and origin \
                and "access-control-request-method" in headers:
            await self._preflight(send, allow)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for name in _OWN:  # the policy is this middleware's alone
                    del out[name]
                if allow is not None:
                    out["Access-Control-Allow-Origin"] = allow
                    out["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
                if not self.any:  # the answer depends on Origin: caches must know
                    out.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, send: Send, allow: str | None) -> None:
        """Answer a preflight here: the browser compares the lists with what it asked."""
        out = MutableHeaders()
        status = 403
        if allow is not None:
            status = 204
            out["Access-Control-Allow-Origin"] = allow
            out["Access-Control-Allow-Methods"] = ALLOW_METHODS
            out["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            out["Access-Control-Max-Age"] = str(MAX_AGE_S)
        if not self.any:
            out["Vary"] = "Origin"
        await send({"type": "http.response.start", "status": status,
                    "headers": out.raw})
        await send({"type": "http.response.body", "body": b""})
