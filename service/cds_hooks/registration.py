"""Registering an EHR as a CDS client of one hospital (`tandem cds register`): its issuer, its keys and the sync
target it is. Refusals name the field and the fix."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from service.cds_hooks.auth import ALGORITHMS
from service.cds_hooks.jwks import JwksUnavailable, key_set
from service.cds_hooks.tables import CdsClient
from service.errors import RecordNotFound, invalid
from service.records.sync_target import SyncTarget
from service.records.tenant import Tenant
from service.settings import Settings
from service.sync.url_safety import check_target_url


def register_cds_client(
    session: Session,
    settings: Settings,
    *,
    tenant_id: str,
    issuer: str,
    jwks_url: str | None = None,
    jwks: dict[str, Any] | None = None,
    sync_target_id: str | None = None,
) -> CdsClient:
    """Add or change the EHR `issuer` of `tenant_id`; exactly one of a JWKS URL or an inline JWKS."""
    if session.get(Tenant, tenant_id) is None:
        raise RecordNotFound("tenant", tenant_id)
    issuer = issuer.strip()
    if not issuer or len(issuer) > 1024:
        raise invalid("issuer", "the EHR's JWT `iss` (1 to 1024 characters)")
    if (jwks_url is None) == (jwks is None):
        raise invalid("jwks", "give the EHR's JWKS URL or its JWK Set inline (one of them)")
    if jwks_url is not None:
        jwks_url = check_target_url(
            jwks_url,
            field="jwks_url",
            allowed_hosts=settings.sync_allowed_hosts,
            require_https=settings.sync_require_https,
        )
    if jwks is not None:
        _check_inline(jwks)
    if sync_target_id is not None:
        target = session.get(SyncTarget, sync_target_id)
        if target is None or target.tenant_id != tenant_id:
            raise RecordNotFound("sync target", sync_target_id)
    client = session.get(CdsClient, issuer)
    if client is not None and client.tenant_id != tenant_id:
        raise invalid("issuer", "this issuer is registered for another hospital: one EHR issuer, one hospital")
    client = client or CdsClient(issuer=issuer, tenant_id=tenant_id)
    client.jwks_url, client.jwks, client.sync_target_id = jwks_url, jwks, sync_target_id
    session.add(client)
    session.flush()
    return client


def unregister_cds_client(session: Session, *, tenant_id: str, issuer: str) -> None:
    client = session.get(CdsClient, issuer)
    if client is None or client.tenant_id != tenant_id:
        raise RecordNotFound("CDS client", issuer)
    session.delete(client)
    session.flush()


def cds_clients(session: Session, tenant_id: str) -> list[CdsClient]:
    return list(
        session.exec(select(CdsClient).where(col(CdsClient.tenant_id) == tenant_id).order_by(col(CdsClient.issuer)))
    )


def _check_inline(jwks: dict[str, Any]) -> None:
    try:
        keys = key_set(jwks).keys
    except JwksUnavailable as error:
        raise invalid("jwks", str(error)) from None
    for key in keys:
        if key.key_type not in ("RSA", "EC") or not key.key_id:
            raise invalid("jwks", f"every key needs a kid and must be RSA or EC (for {' or '.join(ALGORITHMS)})")
        if hasattr(key.key, "private_numbers"):
            raise invalid("jwks", "the JWK Set holds a private key: register the EHR's public keys only")
