"""The JSON features path's entrance: GET items and item answered before the app's stack.

One parcel by id costs our service about 0.1 ms and PostgreSQL about 0.3 ms, but going
through FastAPI's middleware, router (every pygeoapi route is matched in turn), request
wrappers and response plumbing cost several times that: at 32 clients half of the
server's CPU was spent there. This middleware sits outside that stack and hands the two
hottest requests of GIS clients straight to ``FeaturesService``, the same code the
routes in ``features_api`` call, so the answers are the same bytes either way.

Everything else (other methods and paths, HTML, collections this service does not serve)
goes on to the app unchanged.
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from landplatform.publish.features_api import FeaturesService, wants_pygeoapi


class FeaturesFastLane:
    def __init__(self, app: ASGIApp, service: FeaturesService, threads: int) -> None:
        self.app = app
        self.service = service
        # The service's database calls block, so they run on threads; as many threads as
        # the read pool has connections (more would only wait for one). A plain executor:
        # anyio's per-call machinery (cancel scopes, capacity limiter) cost a by-id
        # request more CPU than the service itself.
        self.executor = ThreadPoolExecutor(max_workers=threads,
                                           thread_name_prefix="lis-features")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self._target(scope) if scope["type"] == "http" else None
        if target is None:
            await self.app(scope, receive, send)
            return
        collection_id, item_id = target
        col = self.service.collections.get(collection_id)
        # Query strings are decoded as Starlette does (latin-1, then percent-decoding as
        # UTF-8, blank values kept, the last of a repeated key wins).
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                                keep_blank_values=True))
        accept = next((v.decode("latin-1") for k, v in scope.get("headers") or []
                       if k == b"accept"), "")
        if col is None or wants_pygeoapi(params.get("f"), accept):
            await self.app(scope, receive, send)
            return
        call = (partial(self.service.items, col, params) if item_id is None
                else partial(self.service.item, col, item_id, params))
        # in a copy of the request's context: which database it reads (read_routing)
        response = await asyncio.get_running_loop().run_in_executor(
            self.executor, contextvars.copy_context().run, call)
        await response(scope, receive, send)

    @staticmethod
    def _target(scope: Scope) -> tuple[str, str | None] | None:
        """(collection id, item id or None) of a GET items/item path, else None."""
        if scope["method"] != "GET":
            return None
        path, root = scope["path"], scope.get("root_path") or ""
        if root and path.startswith(root):  # behind a proxy that mounts us below a prefix
            path = path[len(root):]
        parts = path.split("/")
        # ['', 'collections', <id>, 'items'] or [..., 'items', <item id>]
        if len(parts) not in (4, 5) or parts[0] or parts[1] != "collections" \
                or parts[3] != "items" or not parts[2]:
            return None
        if len(parts) == 5:
            return (parts[2], parts[4]) if parts[4] else None
        return parts[2], None
