"""The authenticated caller and the FastAPI dependencies that produce it.

Reading published data needs no token: the public is ``None``. A token that is present
but bad is a 401 wherever this dependency is used, even where the public would be served,
so a client with a broken token learns it at once instead of silently acting as the public.
Rights (which district, which 2025 commune) are decided here, in one place, so every
route asks the same question the same way. An officer is scoped by a pre-2025 district (the
registration branch's area) or by a commune since the 2025 reform: a district officer acts
on every parcel of the district; a commune officer on the parcels whose 2025 commune is
theirs, which only the caller's data can say (``may_act_on``), so a commune officer is
never in scope of a whole district (``may_act_in``).
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
    district: str | None  # officers scoped by a (pre-2025) district
    commune: str | None = None  # officers scoped by a 2025 commune instead

    def may_act_in(self, district_code: str) -> bool:
        """Act on the whole of ``district_code`` (load a file of it, any parcel of it)."""
        return self.role == "admin" or (self.role == "officer"
                                        and self.district == district_code)

    def may_enter(self, district_code: str) -> bool:
        """Reach ``district_code``'s collection at all: its officer, an admin, or a commune
        officer (whose parcels may lie in any district; ``may_act_on`` decides each)."""
        return self.may_act_in(district_code) or (self.role == "officer"
                                                  and self.commune is not None)

    def may_act_on(self, district_code: str, current_commune_code: str | None) -> bool:
        """Write, and read restricted data of, one parcel: of the officer's district, or,
        for a commune officer, whose 2025 commune is theirs (a parcel whose 2025 commune is
        not known is no commune officer's)."""
        if self.commune is not None:
            return self.role == "officer" and current_commune_code == self.commune
        return self.may_act_in(district_code)

    @property
    def scope(self) -> str:
        """What the caller is scoped by, as the messages and the audit say it."""
        if self.role == "admin":
            return "everywhere"
        return f"commune {self.commune}" if self.commune else f"district {self.district}"


def unauthorized(description: str, error: str | None = "invalid_token") -> HTTPException:
    challenge = 'Bearer realm="lis"' + (f', error="{error}"' if error else "")
    return HTTPException(401, description, headers={"WWW-Authenticate": challenge})


def forbidden(principal: Principal, district_code: str,
              what: str | None = None) -> HTTPException:
    """403: ``what`` (default: district ``district_code``) is outside the caller's scope."""
    target = what or f"district {district_code}"
    return HTTPException(403, f"{principal.role} {principal.sub!r} ({principal.scope}) may "
                              f"not act on {target}")


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
        return Principal(claims.sub, claims.role, claims.district, claims.commune)

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
