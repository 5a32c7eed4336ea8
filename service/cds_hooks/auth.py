"""Who is calling: the EHR's JWT checked as CDS Hooks 2.0 "Trusting CDS Clients" asks.

`Authorization: Bearer <JWT>` signed by the EHR with an asymmetric key (RS384 or ES384, the spec's
recommendation; `none` and shared-secret algorithms never), the header's `kid` naming a key of the JWK Set the
EHR registered (a `jku`, if sent, must be that registered URL: no other URL is fetched); `iss` a registered
issuer; `aud` the URL of the endpoint called; `exp`, `iat` and `jti` present, `iat` not in the future, and a
`jti` used once per issuer (kept until the JWT expires).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from service.cds_hooks.jwks import JwksCache, JwksUnavailable, key_set
from service.cds_hooks.tables import CdsClient, CdsJwtSeen
from service.clock import now_utc
from service.errors import NotAuthenticated

ALGORITHMS = ("RS384", "ES384")
MAX_TOKEN_CHARS = 8192
MAX_LIFETIME = timedelta(hours=1)  # exp - iat: a CDS JWT is minted per call; a long-lived one is not one


class CdsRefusal(NotAuthenticated):
    """A refused CDS JWT; `client` is the registered EHR it claimed to be (for the audit), if any."""

    def __init__(self, message: str, client: CdsClient | None = None) -> None:
        super().__init__(message)
        self.client = client


def verify_cds_jwt(
    session: Session, jwks: JwksCache, authorization: str | None, audience: str, *, leeway_seconds: int
) -> CdsClient:
    """The registered EHR that signed this call's JWT; raises CdsRefusal (401) saying what is wrong."""
    token = _bearer(authorization)
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise CdsRefusal("the CDS JWT is not a well-formed JWT") from None
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALGORITHMS:
        raise CdsRefusal(f"the CDS JWT must be signed with {' or '.join(ALGORITHMS)} (got {alg!r})")
    if not isinstance(kid, str) or not kid:
        raise CdsRefusal("the CDS JWT header has no kid (CDS Hooks requires one)")
    issuer = unverified.get("iss")
    client = session.get(CdsClient, issuer) if isinstance(issuer, str) and issuer else None
    if client is None:
        raise CdsRefusal("the CDS JWT's issuer is not registered with this service (tandem cds register)")
    key = _key(client, jwks, kid, header.get("jku"))
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=audience,
            issuer=client.issuer,
            leeway=leeway_seconds,
            options={"require": ["iss", "aud", "exp", "iat", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise CdsRefusal("the CDS JWT has expired", client) from None
    except jwt.InvalidAudienceError:
        raise CdsRefusal(f"the CDS JWT is not for this endpoint (aud must be {audience!r})", client) from None
    except jwt.ImmatureSignatureError:
        raise CdsRefusal("the CDS JWT is issued in the future (iat)", client) from None
    except jwt.InvalidSignatureError:
        raise CdsRefusal("the CDS JWT's signature does not verify with the EHR's registered key", client) from None
    except jwt.PyJWTError as error:
        raise CdsRefusal(f"the CDS JWT is refused: {error}", client) from None
    _check_lifetime(claims, client)
    _remember_jti(session, client, claims)
    return client


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CdsRefusal("send Authorization: Bearer <JWT signed by the EHR> (CDS Hooks 2.0, Trusting CDS Clients)")
    if len(token) > MAX_TOKEN_CHARS:
        raise CdsRefusal("the CDS JWT is too long")
    return token.strip()


def _key(client: CdsClient, jwks: JwksCache, kid: str, jku: Any) -> Any:
    if jku is not None and jku != client.jwks_url:
        raise CdsRefusal("the CDS JWT's jku is not the JWKS URL this EHR registered", client)
    try:
        if client.jwks is not None:
            found = next((k for k in key_set(client.jwks).keys if k.key_id == kid), None)
        elif client.jwks_url is not None:
            found = jwks.key(client.jwks_url, kid)
        else:
            found = None
    except JwksUnavailable as error:
        raise CdsRefusal(f"the EHR's keys could not be read: {error}", client) from None
    if found is None:
        raise CdsRefusal(f"the EHR's JWK Set has no key {kid!r}", client)
    return found.key


def _check_lifetime(claims: dict[str, Any], client: CdsClient) -> None:
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        raise CdsRefusal("the CDS JWT's exp and iat must be numbers", client)
    if exp - iat > MAX_LIFETIME.total_seconds():
        raise CdsRefusal("the CDS JWT lives longer than an hour (exp - iat): mint one per call", client)
    if not isinstance(claims["jti"], str) or not claims["jti"] or len(claims["jti"]) > 255:
        raise CdsRefusal("the CDS JWT's jti must be a string of 1 to 255 characters", client)


def _remember_jti(session: Session, client: CdsClient, claims: dict[str, Any]) -> None:
    """Kept until the JWT expires; the same jti again is refused. Expired ones are forgotten as we go."""
    now = now_utc()
    session.execute(delete(CdsJwtSeen).where(col(CdsJwtSeen.expires_at) < now))
    expires = datetime.fromtimestamp(claims["exp"], UTC)
    try:
        with session.begin_nested():
            session.add(CdsJwtSeen(issuer=client.issuer, jti=claims["jti"], expires_at=expires))
            session.flush()
    except IntegrityError:
        raise CdsRefusal("the CDS JWT was already used (jti replayed): mint a new one per call", client) from None
