"""The body of an OGC API Processes execution request, checked before pygeoapi sees it.

pygeoapi expects a JSON object and answers anything else (``[]``, a string, a number)
with a 500. An execute request is a JSON object whose ``inputs``, when given, is an
object (OGC API - Processes Part 1, execute.yaml); anything else is a 400 here, with what
to send instead. A valid body is handed on unchanged.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response


def execute_body_problem(body: bytes) -> str | None:
    """Why ``body`` is not an execute request (None: it is one)."""
    try:
        doc = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return "the body is not JSON"
    if not isinstance(doc, dict):
        return ("the body must be a JSON object: {\"inputs\": {...}} (OGC API - Processes "
                "execute request)")
    if "inputs" in doc and not isinstance(doc["inputs"], dict):
        return "inputs must be an object of input id -> value"
    if "outputs" in doc and not isinstance(doc["outputs"], dict):
        return "outputs must be an object of output id -> output definition"
    return None


def process_router(delegate: Callable[[Request], Awaitable[Response]],
                   max_running: int) -> APIRouter:
    """The guard: a valid body, and at most ``max_running`` executions at once (a process
    run is heavy; beyond that a client gets 503 + Retry-After, the cheap requests keep the
    server)."""
    router = APIRouter()
    running = asyncio.Semaphore(max_running)

    @router.post("/processes/{process_id}/execution", include_in_schema=False)
    async def execute(request: Request, process_id: str) -> Response:
        body = await request.body()
        problem = execute_body_problem(body)
        if problem is not None:
            return JSONResponse({"code": "InvalidParameterValue", "description": problem},
                                status_code=400)
        if running.locked():
            return JSONResponse({"code": "ServiceUnavailable", "description": "other "
                                 "process runs are under way; try again shortly"},
                                status_code=503, headers={"Retry-After": "10"})

        async def receive() -> dict:  # the body again, for pygeoapi
            return {"type": "http.request", "body": body, "more_body": False}

        async with running:
            return await delegate(Request(request.scope, receive))

    return router
