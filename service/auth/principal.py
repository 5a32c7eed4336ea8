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
    scopes: frozenset[str]
    client_id: str | None = None
