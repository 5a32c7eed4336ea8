"""The EHR user's Tandem role, per the tenant's rules: by a scope the EHR granted, else by fhirUser's type.

Rules are written `Practitioner=clinician` or `scope:user/Patient.cruds=clinician`; scope rules are tried first
(they are the more specific grant), in the order written. Only the care team's page roles can be given: the
patient page is theirs (admins and EHR systems have no patient page), and a Patient or RelatedPerson fhirUser is
never a member of the care team.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from service.auth.principal import Role
from service.errors import invalid

GIVEN_ROLES: tuple[Role, ...] = ("clinician", "coordinator")
USER_TYPES = ("Practitioner", "PractitionerRole", "Person")
SCOPE_PREFIX = "scope:"


def parse_role_rules(written: Sequence[str]) -> list[dict[str, Any]]:
    if not written:
        raise invalid("role", "give at least one rule, e.g. --role Practitioner=clinician")
    rules: list[dict[str, Any]] = []
    for text in written:
        when, _, role = text.partition("=")
        when, role = when.strip(), role.strip()
        if role not in GIVEN_ROLES:
            raise invalid("role", f"{text!r}: the role must be one of {', '.join(GIVEN_ROLES)}")
        if when.startswith(SCOPE_PREFIX):
            if not when.removeprefix(SCOPE_PREFIX) or " " in when:
                raise invalid("role", f"{text!r}: name one scope, e.g. scope:user/Patient.cruds=clinician")
        elif when not in USER_TYPES:
            raise invalid("role", f"{text!r}: the user's type must be one of {', '.join(USER_TYPES)}")
        rules.append({"when": when, "role": role})
    return sorted(rules, key=lambda rule: not str(rule["when"]).startswith(SCOPE_PREFIX))


def fhir_user_type(fhir_user: str) -> str:
    """`Practitioner` of `https://ehr/fhir/Practitioner/123` (or `Practitioner/123`)."""
    parts = fhir_user.rstrip("/").split("/")
    return parts[-2] if len(parts) >= 2 else ""


def role_for(rules: Iterable[dict[str, Any]], fhir_user: str, granted_scopes: Iterable[str]) -> Role | None:
    granted, user_type = set(granted_scopes), fhir_user_type(fhir_user)
    for rule in rules:
        when, role = str(rule["when"]), rule["role"]
        if role not in GIVEN_ROLES:
            continue
        if when.startswith(SCOPE_PREFIX) and when.removeprefix(SCOPE_PREFIX) in granted:
            return cast(Role, role)
        if when == user_type and user_type in USER_TYPES:
            return cast(Role, role)
    return None
