"""The authenticated caller of one request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Role = Literal["ehr-system", "clinician", "coordinator", "admin"]
ROLES: tuple[str, ...] = get_args(Role)


@dataclass(frozen=True)
class Principal:
    subject: str
    tenant_id: str
    role: Role
    # The token's SMART scopes; None when it has no scope claim (role-only on /api, refused on /fhir).
    scopes: frozenset[str] | None
    client_id: str | None = None
