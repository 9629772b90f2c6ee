"""The JSON features path's entrance: GET items and item answered before the app's stack.

One parcel by id costs our service about 0.1 ms and PostgreSQL about 0.3 ms, but going
through FastAPI's middleware, router (every pygeoapi route is matched in turn), request
wrappers and response plumbing cost several times that: at 32 clients half of the
server's CPU was spent there. This middleware sits outside that stack and hands the two
hottest requests of GIS clients straight to ``FeaturesService``, the same code the
routes in ``features_api`` call, so the answers are the same bytes either way.

A POST items search with a CQL2 JSON body (``CQL2_JSON_TYPES``, or ``application/json``
on a collection without writes) is answered here too: on a writable collection the
domain's create route would take the POST first.

Everything else (other methods and paths, HTML, collections this service does not serve)
goes on to the app unchanged.
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from landplatform.publish.features_api import (
    CQL2_JSON_TYPES,
    MAX_FILTER_BODY,
    FeaturesService,
    wants_pygeoapi,
)


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
        if scope["type"] == "http" and scope["method"] == "POST":
            await self._search(scope, receive, send)
            return
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

    async def _search(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A POST items search with a CQL2 JSON body, else the app's POST."""
        target = self._path(scope)
        col = self.service.collections.get(target[0]) if target and not target[1] else None
        media = next((v.decode("latin-1") for k, v in scope.get("headers") or []
                      if k == b"content-type"), "").split(";")[0].strip().lower()
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                                keep_blank_values=True))
        if col is None or not (media in CQL2_JSON_TYPES or (
                media == "application/json" and not col.layer.writable)) or \
                params.get("f", "json").lower() not in ("json", "geojson"):
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_FILTER_BODY:
                response = JSONResponse({"code": "PayloadTooLarge", "description":
                                         f"a CQL2 JSON filter is at most "
                                         f"{MAX_FILTER_BODY // 1024} KiB"}, status_code=413)
                await response(scope, receive, send)
                return
            if not message.get("more_body"):
                break
        call = partial(self.service.search, col, params, body)
        response = await asyncio.get_running_loop().run_in_executor(self.executor, call)
        await response(scope, receive, send)

    @staticmethod
    def _target(scope: Scope) -> tuple[str, str | None] | None:
        """(collection id, item id or None) of a GET items/item path, else None."""
        if scope["method"] != "GET":
            return None
        return FeaturesFastLane._path(scope)

    @staticmethod
    def _path(scope: Scope) -> tuple[str, str | None] | None:
        """(collection id, item id or None) of an items/item path, else None."""
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
