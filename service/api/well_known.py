"""Our public signing keys, for EHRs that verify our SMART Backend Services assertions (Epic needs a JWKS URL)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from service.sync.auth import jwks_document

router = APIRouter(tags=["health"])


@router.get(
    "/.well-known/jwks.json",
    operation_id="readJwks",
    summary="Our public keys (JWKS); public by design: it holds no secret and no patient data",
)
def jwks(request: Request) -> dict[str, Any]:
    return jwks_document(request.app.state.settings)
