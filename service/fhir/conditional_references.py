"""Conditional references (`Patient?identifier=system|value`) rewritten to the one record they match.

FHIR R4 lets a transaction refer to a resource by search criteria instead of an id (http.html#trules,
"Conditional References"): the server runs the search; exactly one match replaces the reference with that
resource's Type/id, no match or several fail the request. Senders write them wherever they know a patient's MRN
but not our id, so Tandem resolves them on every write path, not only in transactions: single POST/PUT, batch
and transaction entries, and `tandem import`. The search is the facade's own (same tenant, same restricted
patients), so another tenant's patient matches nothing and is refused exactly like an unknown one.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qsl, quote

from sqlmodel import Session

from service.audit_trail import RequestContext
from service.break_glass.access import ensure_visible, hidden_patients
from service.errors import FieldProblem, InvalidRequest
from service.fhir.search import run_search
from service.fhir.search_parameters import InvalidSearch, parse_search
from service.patient_refresh import refresh_before_reading

# What a reference may be conditional on: business identifiers (and our id). Other parameters (status, dates,
# code) describe many resources by design, so a reference built on them could only ever match by luck.
CRITERIA: Final = ("identifier", "_id")
# The types a reference may name by criteria: those whose records other resources point at.
TYPES: Final = ("Patient", "Encounter", "MedicationAdministration", "QuestionnaireResponse", "CarePlan")
_HOW = "write it as Type?identifier=system|value (e.g. Patient?identifier=urn:oid:1.2.3|12345)"


def is_conditional(reference: str) -> bool:
    """A relative reference with a query: Type?criteria (a literal reference never holds a '?')."""
    head, sep, _ = reference.partition("?")
    return bool(sep) and "/" not in head


def resolve_conditional_references(
    session: Session, ctx: RequestContext, resource: dict[str, Any], where: str
) -> dict[str, Any]:
    """The resource with each conditional `reference` replaced by Type/id of its one match, and each logical
    patient reference (a `subject` or `patient` holding only an `identifier`) given the `reference` of its one
    match; `where` locates the resource in refusals ("Encounter", "Bundle.entry[3].resource"). Unchanged (the
    same object) when it has none, which is the common case and costs one walk of the JSON."""
    if not _any_to_resolve(resource):
        return resource
    found: list[tuple[str, str]] = []
    _collect(resource, where, found)
    if not found:
        return resource
    rewritten: dict[str, str] = {}
    for location, reference in found:
        if reference not in rewritten:
            rewritten[reference] = _match(session, ctx, reference, location)
    result: dict[str, Any] = _replace(resource, rewritten)
    return result


def _logical_patient(key: str, value: Any) -> str | None:
    """`Patient?identifier=system|value` for a Reference that names its patient by identifier only (R4
    references.html#logical), as an EHR writes the MRN it knows; a logical reference elsewhere stays as sent."""
    if key not in ("subject", "patient") or not isinstance(value, dict) or "reference" in value:
        return None
    identifier = value.get("identifier")
    if value.get("type") not in (None, "Patient") or not isinstance(identifier, dict):
        return None
    system, code = identifier.get("system"), identifier.get("value")
    if not isinstance(system, str | None) or not isinstance(code, str | None):
        return None  # not an Identifier: the reader refuses its shape
    # Quoted as a query would be, so a value holding & or + reads back as sent.
    token = f"{system or ''}|{code or ''}"
    return f"Patient?identifier={quote(token, safe=':/|')}"


def _any_to_resolve(value: Any) -> bool:
    """_collect's test without locating anything: every write pays for this walk, few need more."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                if key == "reference" and "?" in item and is_conditional(item):
                    return True
            elif (key in ("subject", "patient") and _logical_patient(key, item) is not None) or (
                isinstance(item, dict | list) and _any_to_resolve(item)
            ):
                return True
    elif isinstance(value, list):
        return any(isinstance(item, dict | list) and _any_to_resolve(item) for item in value)
    return False


def _collect(value: Any, location: str, found: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str) and is_conditional(item):
                found.append((f"{location}.reference", item))
            elif (logical := _logical_patient(key, item)) is not None:
                found.append((f"{location}.{key}.identifier", logical))
            elif isinstance(item, dict | list):
                _collect(item, f"{location}.{key}", found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _collect(item, f"{location}[{index}]", found)


def _replace(value: Any, rewritten: dict[str, str]) -> Any:
    if isinstance(value, dict):
        replaced: dict[str, Any] = {}
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                replaced[key] = rewritten.get(item, item)
            elif (logical := _logical_patient(key, item)) is not None:
                replaced[key] = {"reference": rewritten[logical], **item}  # the identifier stays beside it
            else:
                replaced[key] = _replace(item, rewritten)
        return replaced
    if isinstance(value, list):
        return [_replace(v, rewritten) for v in value]
    return value


def _refused(location: str, message: str, code: str) -> InvalidRequest:
    return InvalidRequest([FieldProblem(location, message, issue_code=code)])


def _match(session: Session, ctx: RequestContext, reference: str, location: str) -> str:
    resource_type, _, query = reference.partition("?")
    if resource_type not in TYPES:
        raise _refused(
            location,
            f"{reference}: a conditional reference can name {', '.join(TYPES)}, not {resource_type or 'no type'}",
            "not-supported",
        )
    criteria = parse_qsl(query, keep_blank_values=True)
    if not criteria:
        raise _refused(location, f"{reference}: names no search criteria; {_HOW}", "invalid")
    for name, value in criteria:
        if name not in CRITERIA:
            raise _refused(
                location,
                f"{reference}: {name!r} is not supported in a conditional reference (only {', '.join(CRITERIA)}); "
                f"{_HOW}",
                "not-supported",
            )
        if not value.strip() or value.strip().endswith("|"):
            # system| would match any value of that system: a reference must name one resource
            raise _refused(location, f"{reference}: {name} has no value; {_HOW}", "invalid")
    try:
        search = parse_search(resource_type, criteria, max_count=2, default_count=2, strict=True)
    except InvalidSearch as error:
        raise _refused(location, f"{reference}: {error.problems[0].message}; {_HOW}", "invalid") from None
    search.hidden_patients = hidden_patients(session, ctx)
    refresh_before_reading(session, resource_type)
    page = run_search(session, ctx.tenant_id, search)
    what = "patient" if resource_type == "Patient" else resource_type
    if not page.matches:
        fix = (
            "send the Patient first or check the MRN system" if resource_type == "Patient" else f"send the {what} first"
        )
        raise _refused(location, f"{reference} matches no {what}; {fix}", "not-found")
    if len(page.matches) > 1 or page.more:
        raise _refused(
            location,
            f"{reference} matches more than one {what}; name it by an identifier that is unique (system|value)",
            "multiple-matches",
        )
    match = page.matches[0]
    ensure_visible(session, ctx, match.patient_id)
    return f"{match.resource_type}/{match.resource_id}"
