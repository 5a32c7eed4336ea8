"""SMART App Launch scopes: one model for every surface (/fhir, /api/v1 and the pages).

A route declares what it touches as FHIR resource types with access letters (`QuestionnaireResponse.s`); a token
is held to its `scope` claim wherever it is used. v2 scopes (`system/Observation.rs`, `user/*.cruds`) and their
v1 forms (`.read`, `.write`, `.*`) are accepted. patient/ scopes grant nothing: the service serves a care team,
not a single patient's app. Granular v2 scopes (`user/Observation.rs?category=vital-signs`) grant nothing either:
we cannot narrow every answer to them, and SMART v2 lets a server that cannot enforce them refuse them.

A token without a scope claim (development and service tokens) is `None`: role-only on /api/v1 and the pages,
refused on /fhir (a FHIR client is a SMART client and must ask for scopes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from service.errors import NotPermitted

LETTERS = {"read": "r", "vread": "r", "history": "r", "search": "s", "create": "c", "update": "u", "delete": "d"}
INTERACTIONS = {"r": "read", "s": "search", "c": "create", "u": "update", "d": "delete"}
V1 = {"read": "rs", "write": "cud", "*": "cruds"}


@dataclass(frozen=True)
class Need:
    """What a route touches: one FHIR resource type and the access letters it needs (all of them)."""

    resource_type: str
    letters: str

    def __str__(self) -> str:
        return f"{self.resource_type}.{self.letters}"


Needs = tuple[Need, ...]


def needs(*declared: str) -> Needs:
    """`needs("Patient.s", "Flag.s")`: checked when the route is declared, so a typo fails at import."""
    parsed = []
    for text in declared:
        resource_type, _, letters = text.partition(".")
        if not resource_type[:1].isupper() or not letters or not set(letters) <= set("cruds"):
            raise ValueError(f"scope need {text!r} is not <FhirType>.<letters of cruds>")
        parsed.append(Need(resource_type, letters))
    if not parsed:
        raise ValueError("declare at least one need, or scopes=None for a role-only route")
    return tuple(parsed)


def _grant(scope: str, resource_type: str) -> str:
    """The letters one scope grants on a type ("" for none)."""
    context, _, rest = scope.partition("/")
    resource, _, permissions = rest.partition(".")
    if context not in ("user", "system") or resource not in ("*", resource_type) or "?" in permissions:
        return ""
    granted = V1.get(permissions, permissions)
    return granted if granted and set(granted) <= set("cruds") else ""


def scope_allows(scopes: Iterable[str] | None, resource_type: str, interaction: str) -> bool:
    letter = LETTERS[interaction]
    return any(letter in _grant(scope, resource_type) for scope in scopes or ())


def refusal(scopes: frozenset[str] | None, need: Need) -> str | None:
    """Why these scopes do not grant the need, or None if they do."""
    missing = [letter for letter in need.letters if not scope_allows(scopes, need.resource_type, INTERACTIONS[letter])]
    if not missing:
        return None
    letters = "".join(missing)
    wanted = f"user/{need.resource_type}.{letters}"
    for scope in sorted(scopes or ()):
        base, _, query = scope.partition("?")
        if query and _grant(base, need.resource_type) and set(letters) & set(_grant(base, need.resource_type)):
            return f"granular scope {scope!r} is not supported; ask for {base}"
    if scopes is None:
        return f"the token carries no scope claim; ask for e.g. {wanted} (or system/ for a backend service)"
    doing = ", ".join(INTERACTIONS[letter] for letter in missing)
    return f"the token's scopes do not allow {doing} on {need.resource_type}; ask for e.g. {wanted}"


def require_scope(scopes: frozenset[str] | None, resource_type: str, interaction: str) -> None:
    """/fhir: the scopes must grant the interaction (a token without a scope claim is refused)."""
    problem = refusal(scopes, Need(resource_type, LETTERS[interaction]))
    if problem is not None:
        raise NotPermitted(problem)


def require_needs(scopes: frozenset[str] | None, declared: Needs | None) -> None:
    """/api/v1 and the pages: a token with a scope claim is held to it; one without is role-only."""
    if scopes is None or declared is None:
        return
    for need in declared:
        problem = refusal(scopes, need)
        if problem is not None:
            raise NotPermitted(problem)


def includes_patient(params: Iterable[tuple[str, str]]) -> bool:
    """A search with _include also returns the patients (the only target the facade includes): it reads Patient."""
    return any(name == "_include" for name, _ in params)
