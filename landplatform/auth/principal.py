"""The authenticated caller and the FastAPI dependencies that produce it.

Reading published data needs no token: the public is ``None``. A token that is present
but bad is a 401 wherever this dependency is used, even where the public would be served,
so a client with a broken token learns it at once instead of silently acting as the public.
Rights (which district) are decided here, in one place, so every route asks the same
question the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request

from landplatform.auth.tokens import InvalidToken, TokenVerifier


@dataclass(frozen=True)
class Principal:
    sub: str
    role: str  # 'officer' | 'admin'
    district: str | None  # officers only

    def may_act_in(self, district_code: str) -> bool:
        """Write parcels of, and read restricted data of, ``district_code``."""
        return self.role == "admin" or (self.role == "officer"
                                        and self.district == district_code)


def unauthorized(description: str, error: str | None = "invalid_token") -> HTTPException:
    challenge = 'Bearer realm="lis"' + (f', error="{error}"' if error else "")
    return HTTPException(401, description, headers={"WWW-Authenticate": challenge})


def forbidden(principal: Principal, district_code: str) -> HTTPException:
    return HTTPException(403, f"{principal.role} {principal.sub!r} may not act in district "
                              f"{district_code}")


def principal_dependency(verifier: TokenVerifier) -> Callable[[Request], Principal | None]:
    """A dependency returning the caller (``None``: the public); a bad token -> 401."""

    def principal(request: Request) -> Principal | None:
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("the Authorization header must be 'Bearer <token>'",
                               "invalid_request")
        try:
            claims = verifier.verify(token.strip())
        except InvalidToken as exc:
            raise unauthorized(f"invalid token: {exc}") from None
        return Principal(claims.sub, claims.role, claims.district)

    return principal


def require(principal: Principal | None) -> Principal:
    """The caller, or a 401 asking for a token (for routes the public may not use)."""
    if principal is None:
        raise unauthorized("a bearer token is required", error=None)
    return principal


def require_district(principal: Principal | None, district_code: str) -> Principal:
    """The caller if they may act in ``district_code``: else 401 (public) or 403."""
    caller = require(principal)
    if not caller.may_act_in(district_code):
        raise forbidden(caller, district_code)
    return caller
