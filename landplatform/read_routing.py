"""Which database a request reads: a standby, or the primary when it must see the primary.

With standbys (LIS_READ_DATABASE_URLS) the public read pool reads from them
(``landplatform.db.ReadRouter``); a standby replays the primary's WAL a moment later, so
a client that has just written could read its parcel as it was before. This middleware
decides per request, before any route runs, and the pool follows:

- a write (any method but GET, HEAD and OPTIONS) reads the primary;
- an authenticated request (an ``Authorization`` header: officers, administrators) reads
  the primary: the people who write always see the register as it is;
- a client that wrote in the last LIS_READ_PRIMARY_AFTER_WRITE_S seconds reads the
  primary: a successful write answers with a ``lis_read_primary`` cookie that lasts that
  long (browsers and HTTP clients with a cookie jar send it back to any worker), and the
  worker that took the write also remembers the client's address for that long (for
  clients without cookies that come back to the same worker);
- everything else (anonymous GETs: the public, GIS clients, tiles) reads a standby.

The cookie only ever sends a client to the primary; forging one gains nothing but load.
"""

from __future__ import annotations

import time
from http.cookies import CookieError, SimpleCookie

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from landplatform.db import reading_primary

COOKIE = "lis_read_primary"
READS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_REMEMBERED = 10_000  # client addresses a worker keeps (expired ones are dropped first)


class ReadRouting:
    """ASGI middleware: mark each request as reading the primary or a standby."""

    def __init__(self, app: ASGIApp, window_s: float) -> None:
        self.app = app
        self.window_s = window_s
        self._recent: dict[str, float] = {}  # client address -> reads the primary until

    def _must_read_primary(self, scope: Scope, now: float) -> bool:
        if scope["method"] not in READS:
            return True
        cookie = ""
        for key, value in scope.get("headers") or []:
            if key == b"authorization":
                return True
            if key == b"cookie":
                cookie = value.decode("latin-1")
        if cookie:
            try:
                morsel = SimpleCookie(cookie).get(COOKIE)
            except CookieError:
                morsel = None
            if morsel is not None and morsel.value.isdigit() and int(morsel.value) > time.time():
                return True
        client = scope.get("client")
        return bool(client) and self._recent.get(client[0], 0.0) > now

    def _remember(self, scope: Scope, now: float) -> None:
        client = scope.get("client")
        if not client:
            return
        if len(self._recent) >= MAX_REMEMBERED:
            self._recent = {k: v for k, v in self._recent.items() if v > now}
            if len(self._recent) >= MAX_REMEMBERED:
                self._recent.clear()
        self._recent[client[0]] = now + self.window_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        primary = self._must_read_primary(scope, now)
        writes = scope["method"] not in READS

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                until = int(time.time() + self.window_s) + 1
                cookie = (f"{COOKIE}={until}; Max-Age={int(self.window_s) + 1}; Path=/; "
                          "HttpOnly; SameSite=Lax")
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"set-cookie", cookie.encode("latin-1"))]}
                self._remember(scope, now)
            await send(message)

        with reading_primary(primary):
            await self.app(scope, receive, send_marked if writes and self.window_s else send)
