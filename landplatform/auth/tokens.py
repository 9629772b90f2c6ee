"""Bearer-token verification (and the embedded default's local issuer).

Two modes, chosen by configuration, never both:

* an external OAuth2/OIDC provider (Keycloak, Entra ID, ...): ``LIS_AUTH_JWKS_URL`` names
  its JWKS; tokens are RS256/ES256, ``LIS_AUTH_ISSUER``/``LIS_AUTH_AUDIENCE`` are checked;
  keys are cached by ``jwt.PyJWKClient`` (a rotated key id triggers one refetch);
* the embedded default: HS256 with a local secret (``LIS_AUTH_SECRET``, or a random one
  generated once into ``var_dir/auth/secret``, mode 600), tokens minted by
  ``lis token issue``. Symmetric keys never leave the host, so this is for one operator's
  installation, not for a federation of land offices.

Claim mapping (one rule, documented in docs/SECURITY.md): ``sub`` is the actor; the role is
the ``role`` claim, else the first of ``admin``/``officer`` found in the ``roles`` list or in
Keycloak's ``realm_access.roles``; an officer carries ``district`` (a pre-2025 district code:
the registration branch's area, which in most provinces follows a former district) or
``commune`` (a commune since the 1 July 2025 reform, 5 digits), not both. ``exp`` is
required: a token without an expiry is never accepted.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from landplatform.settings import Settings

LOCAL_ISSUER = "lis-local"
LOCAL_AUDIENCE = "lis"
EXTERNAL_ALGORITHMS = ["RS256", "ES256"]
ROLES = ("admin", "officer")
DISTRICT = re.compile(r"^\d{3}$")
COMMUNE = re.compile(r"^\d{5}$")
JWKS_LIFESPAN_S = 300


class InvalidToken(Exception):
    """The token is malformed, forged, expired, or names no usable role (-> 401)."""


@dataclass(frozen=True)
class Claims:
    sub: str
    role: str
    district: str | None
    commune: str | None = None  # an officer scoped by a 2025 commune instead


def secret_path(settings: Settings) -> Path:
    return settings.var_dir / "auth" / "secret"


def local_secret(settings: Settings) -> str:
    """The local HS256 secret: the configured one, else the generated file's (created once,
    mode 600, so a restart keeps tokens valid and other users cannot read it)."""
    if settings.auth_secret:
        return settings.auth_secret
    path = secret_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="ascii").strip()


def map_claims(payload: dict) -> Claims:
    """Role and district from a verified payload (see the module docstring)."""
    sub = payload.get("sub")
    if not isinstance(sub, str) or not sub:
        raise InvalidToken("the token names no subject (sub)")
    role = payload.get("role")
    if role is None:
        listed = payload.get("roles")
        if not isinstance(listed, list):
            listed = (payload.get("realm_access") or {}).get("roles", [])
        role = next((r for r in ROLES if r in listed), None)
    if role not in ROLES:
        raise InvalidToken("the token grants no platform role (admin or officer)")
    if role != "officer":
        return Claims(sub, role, None)
    district, commune = payload.get("district"), payload.get("commune")
    if district is not None and commune is not None:
        raise InvalidToken("an officer's token names a district or a commune, not both")
    if commune is not None:
        if not (isinstance(commune, str) and COMMUNE.match(commune)):
            raise InvalidToken("an officer's commune is a 5-digit code (a commune since the "
                               "2025 reform)")
        return Claims(sub, role, None, commune)
    if not (isinstance(district, str) and DISTRICT.match(district)):
        raise InvalidToken("an officer's token must name a district (3-digit code) or a "
                           "commune (5-digit code, since the 2025 reform)")
    return Claims(sub, role, district)


class TokenVerifier:
    """Verifies bearer tokens under the configured mode; one per application."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.external = bool(settings.auth_jwks_url)
        self._jwks = (jwt.PyJWKClient(settings.auth_jwks_url, cache_keys=True,
                                      lifespan=JWKS_LIFESPAN_S)
                      if self.external else None)
        self._secret = None if self.external else local_secret(settings)

    def verify(self, token: str) -> Claims:
        options = {"require": ["exp", "sub"]}
        try:
            if self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
                payload = jwt.decode(token, key, algorithms=EXTERNAL_ALGORITHMS,
                                     issuer=self.settings.auth_issuer,
                                     audience=self.settings.auth_audience,
                                     options={**options,
                                              "verify_aud": bool(self.settings.auth_audience)})
            else:
                payload = jwt.decode(token, self._secret, algorithms=["HS256"],
                                     issuer=LOCAL_ISSUER,
                                     audience=self.settings.auth_audience or LOCAL_AUDIENCE,
                                     options=options)
        except jwt.PyJWKClientError as exc:
            raise InvalidToken(f"signing key not available: {exc}") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(str(exc)) from None
        return map_claims(payload)


def issue_local(secret: str, *, sub: str, role: str, district: str | None = None,
                ttl_s: int = 8 * 3600, audience: str = LOCAL_AUDIENCE,
                now: float | None = None, commune: str | None = None) -> str:
    """A token of the local issuer (the CLI's ``lis token issue`` and the tests)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "officer" and district and commune:
        raise ValueError("an officer is scoped by --district or by --commune, not both")
    if role == "officer" and commune is not None:
        if not COMMUNE.match(commune):
            raise ValueError("--commune is a 5-digit code of a commune since the 2025 reform")
    elif role == "officer" and not (district and DISTRICT.match(district)):
        raise ValueError("an officer needs --district (a 3-digit pre-2025 district code) "
                         "or --commune (a 5-digit 2025 commune code)")
    if ttl_s <= 0:
        raise ValueError("the lifetime must be positive")
    issued = int(now if now is not None else time.time())
    claims = {"iss": LOCAL_ISSUER, "aud": audience, "sub": sub, "role": role,
              "iat": issued, "exp": issued + ttl_s}
    if role == "officer":
        claims.update({"commune": commune} if commune else {"district": district})
    return jwt.encode(claims, secret, algorithm="HS256")


def parse_ttl(text: str) -> int:
    """'8h', '30m', '2d', '90s' or plain seconds -> seconds."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"not a lifetime: {text!r} (e.g. 8h, 30m, 2d)")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
