"""Small HTTP helpers every router of the platform and the domains shares."""

from __future__ import annotations

import re
import uuid

from fastapi import Request

_CLIENT_ID = re.compile(r"[\w.\-:]{1,100}")


def request_id(request: Request) -> str:
    """The request's id for responses and the audit: the client's ``X-Request-ID`` when
    it is a short plain token, else a new one."""
    given = request.headers.get("x-request-id", "")
    return given if _CLIENT_ID.fullmatch(given) else uuid.uuid4().hex
