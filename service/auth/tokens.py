"""Bearer-token validation (PyJWT) against configured issuers, and development tokens.

External identity providers publish signing keys as a JWKS; the development issuer signs with a shared secret
that only exists outside production.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import jwt

from service.auth.principal import ROLES, Principal, Role
from service.clock import now_utc
from service.errors import NotAuthenticated
from service.settings import Settings

DEV_ALGORITHM = "HS256"
ISSUER_ALGORITHMS = ["RS256", "RS384", "ES256", "ES384"]
TENANT_CLAIM = "tenant"
ROLE_CLAIM = "role"
MAX_TOKEN_CHARS = 8192


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._jwks = {issuer: jwt.PyJWKClient(url, cache_keys=True) for issuer, url in settings.trusted_issuers.items()}

    def verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_CHARS:
            raise NotAuthenticated("bearer token is too long")
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            raise NotAuthenticated("bearer token is not a well-formed JWT") from None
        key, algorithms = self._key_for(issuer, token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._settings.token_audience,
                issuer=issuer,
                leeway=self._settings.token_leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("bearer token has expired; request a new one") from None
        except jwt.InvalidAudienceError:
            raise NotAuthenticated(
                f"bearer token is not for this service (audience must be {self._settings.token_audience!r})"
            ) from None
        except jwt.PyJWTError as error:
            raise NotAuthenticated(f"bearer token rejected: {error}") from None
        return _principal(claims)

    def _key_for(self, issuer: Any, token: str) -> tuple[Any, list[str]]:
        if issuer == self._settings.dev_issuer and self._settings.dev_issuer_enabled:
            return self._settings.dev_token_secret, [DEV_ALGORITHM]
        client = self._jwks.get(issuer) if isinstance(issuer, str) else None
        if client is None:
            raise NotAuthenticated("bearer token comes from an issuer this service does not trust")
        try:
            return client.get_signing_key_from_jwt(token).key, ISSUER_ALGORITHMS
        except jwt.PyJWTError:
            raise NotAuthenticated("bearer token is signed by a key the issuer does not publish") from None


def _principal(claims: dict[str, Any]) -> Principal:
    tenant, role, subject = claims.get(TENANT_CLAIM), claims.get(ROLE_CLAIM), claims.get("sub")
    if not isinstance(tenant, str) or not tenant:
        raise NotAuthenticated(f"bearer token has no {TENANT_CLAIM!r} claim")
    if role not in ROLES:
        raise NotAuthenticated(f"bearer token role must be one of {', '.join(ROLES)}")
    scope = claims.get("scope")
    client_id = claims.get("azp") or claims.get("client_id")
    return Principal(
        subject=str(subject),
        tenant_id=tenant,
        role=cast(Role, role),
        scopes=_scopes(scope),
        client_id=client_id if isinstance(client_id, str) else None,
    )


def _scopes(claim: Any) -> frozenset[str] | None:
    """No claim: None (role-only). A claim that is not a space-separated string grants nothing, never everything."""
    if claim is None:
        return None
    return frozenset(claim.split()) if isinstance(claim, str) else frozenset()


def mint_dev_token(settings: Settings, *, tenant: str, role: Role, subject: str | None = None, hours: int = 12) -> str:
    """A token from the development issuer; refused when that issuer is off (production)."""
    if not settings.dev_issuer_enabled:
        raise RuntimeError("development tokens are disabled in production")
    issued = now_utc()
    claims = {
        "iss": settings.dev_issuer,
        "aud": settings.token_audience,
        "sub": subject or f"dev-{role}",
        TENANT_CLAIM: tenant,
        ROLE_CLAIM: role,
        "scope": "user/*.cruds" if role != "ehr-system" else "system/*.cruds",
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(hours=hours)).timestamp()),
    }
    return jwt.encode(claims, settings.dev_token_secret, algorithm=DEV_ALGORITHM)
