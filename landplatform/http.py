"""Small HTTP helpers every router of the platform and the domains shares."""

from __future__ import annotations

import re
import uuid

from fastapi import Request

_CLIENT_ID = re.compile(r"[\w.\-:]{1,100}")


def request_id(request: Request) -> str:
    """The request's id, for responses, logs and the audit: always the server's own, made
    once per request (a client cannot choose the id the audit files its act under)."""
    rid = request.scope.setdefault("state", {}).get("lis_request_id")
    if rid is None:
        rid = request.scope["state"]["lis_request_id"] = uuid.uuid4().hex
    return rid


def client_request_id(request: Request) -> str | None:
    """The client's ``X-Request-ID`` when it is a short plain token (kept beside the
    server's id, so a client can find its request), else None."""
    given = request.headers.get("x-request-id", "")
    return given if _CLIENT_ID.fullmatch(given) else None
