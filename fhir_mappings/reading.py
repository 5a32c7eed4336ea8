"""Strict, located reads from incoming resource JSON: every refusal names the element it is about.

The one located reader of the code base: fhir_mappings and the instruments (Questionnaire registration, answer
resolution) both read through it, and both raise its MappingError.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import Any, Final

from .errors import MappingError

# Maps a reference as the sender wrote it (relative or absolute) to our record id, or None when unknown.
ReferenceResolver = Callable[[str], str | None]

# [base/]Type/id[/_history/vid]; the type is an upper-camel resource name (R4 references.html#literal).
_LITERAL_REFERENCE: Final = re.compile(r"(?:.*/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?")
# A LOINC code ending a linkId or a canonical, as US Core, LHC-Forms and ONC BHP write them ("/44250-9").
_LOINC_AT_END: Final = re.compile(r"(\d{1,6}-\d)$")
_LOINC: Final = "http://loinc.org"


def parse_reference(reference: str) -> tuple[str, str] | None:
    """(resource type, id) of a literal reference, relative or absolute; None for contained/logical ones."""
    match = _LITERAL_REFERENCE.fullmatch(reference.strip())
    return (match.group(1), match.group(2)) if match else None


def as_list(value: Any, location: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MappingError(location, f"expected a JSON array, got {type(value).__name__}", code="structure")
    return value


def as_object(value: Any, location: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MappingError(location, f"expected a JSON object, got {type(value).__name__}", code="structure")
    return value


def text_value(value: Any, location: str) -> str | None:
    """An optional JSON string at `location`; empty strings are not FHIR strings."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise MappingError(location, f"expected a string, got {type(value).__name__}", code="structure")
    if not value.strip():
        raise MappingError(location, "expected a non-empty string", code="value")
    return value


def required_text(value: Any, location: str) -> str:
    text = text_value(value, location)
    if text is None:
        raise MappingError(location, "is required", code="required")
    return text


def optional_str(data: dict[str, Any], key: str, location: str) -> str | None:
    return text_value(data.get(key), f"{location}.{key}")


def required_str(data: dict[str, Any], key: str, location: str) -> str:
    value = optional_str(data, key, location)
    if value is None:
        raise MappingError(f"{location}.{key}", "is required", code="required")
    return value


def expect_type(resource: dict[str, Any], resource_type: str) -> None:
    found = resource.get("resourceType")
    if found != resource_type:
        raise MappingError(
            f"{resource_type}.resourceType", f"expected a {resource_type}, got {found!r}", code="not-supported"
        )


def aware_datetime(value: Any, location: str) -> str:
    """An ISO dateTime with time and offset: our records refuse naive or partial times."""
    if not isinstance(value, str):
        raise MappingError(location, "expected a dateTime string", code="structure")
    if len(value) <= 10:
        raise MappingError(
            location, f"{value!r} has no time of day; a full dateTime with offset is needed", code="value"
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MappingError(location, f"{value!r} is not a valid dateTime", code="value") from None
    if parsed.tzinfo is None:
        raise MappingError(location, f"{value!r} has no time zone offset", code="value")
    return parsed.isoformat()


def full_date(value: Any, location: str) -> str:
    if not isinstance(value, str) or len(value) != 10:
        raise MappingError(location, f"{value!r} is not a full date (YYYY-MM-DD)", code="value")
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise MappingError(location, f"{value!r} is not a valid date", code="value") from None


def codings(concept: Any, location: str) -> Iterator[tuple[str | None, str | None, str | None]]:
    """(system, code, display) of every coding of a CodeableConcept."""
    if concept is None:
        return
    for i, coding in enumerate(as_list(as_object(concept, location).get("coding"), f"{location}.coding")):
        item = as_object(coding, f"{location}.coding[{i}]")
        yield item.get("system"), item.get("code"), item.get("display")


def has_code(concept: Any, location: str, system: str, codes: set[str] | frozenset[str]) -> str | None:
    """The first code of `concept` in `system` that is one of `codes`."""
    return next((c for s, c, _ in codings(concept, location) if s == system and c in codes), None)


def concept_text(concept: Any, location: str) -> str | None:
    """Human text of a CodeableConcept: its text, else the first display, else the first code."""
    if concept is None:
        return None
    data = as_object(concept, location)
    if isinstance(data.get("text"), str) and data["text"].strip():
        return str(data["text"])
    for _, code, display in codings(data, location):
        if display or code:
            return display or code
    return None


def extensions(data: dict[str, Any], url: str, location: str) -> list[dict[str, Any]]:
    found = as_list(data.get("extension"), f"{location}.extension")
    return [as_object(e, f"{location}.extension") for e in found if isinstance(e, dict) and e.get("url") == url]


def located_extensions(element: Mapping[str, Any], url: str, location: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(location, extension) of each extension with `url`, located by its index."""
    for index, raw in enumerate(as_list(element.get("extension"), f"{location}.extension")):
        extension = as_object(raw, f"{location}.extension[{index}]")
        if extension.get("url") == url:
            yield f"{location}.extension[{index}]", extension


def loinc_in_link_id(link_id: str) -> str | None:
    """The LOINC code a linkId (or a canonical) ends with, as in US Core and LHC-Forms ("/44250-9")."""
    match = _LOINC_AT_END.search(link_id)
    return match.group(1) if match else None


def loinc_codes(item: Mapping[str, Any], location: str) -> list[str]:
    """LOINC codes on a Questionnaire item's code; a coding without system counts (uwcirg GAD-7)."""
    codes = []
    for index, raw in enumerate(as_list(item.get("code"), f"{location}.code")):
        coding = as_object(raw, f"{location}.code[{index}]")
        if coding.get("system") in (None, _LOINC) and isinstance(coding.get("code"), str):
            codes.append(coding["code"])
    return codes


def extension_value(data: dict[str, Any], url: str, value_key: str, location: str) -> Any:
    found = extensions(data, url, location)
    if not found:
        return None
    if len(found) > 1:
        raise MappingError(f"{location}.extension('{url}')", "appears more than once", code="invariant")
    return found[0].get(value_key)


def resolve(
    data: dict[str, Any], key: str, location: str, resolver: ReferenceResolver | None, expected: str
) -> str | None:
    """Our id for a reference to one of our records; unknown references are dropped, never guessed."""
    ref = data.get(key)
    if ref is None or resolver is None:
        return None
    literal = as_object(ref, f"{location}.{key}").get("reference")
    if not isinstance(literal, str):
        return None
    parsed = parse_reference(literal)
    if parsed is None or parsed[0] != expected:
        return None
    return resolver(literal)


def resolve_subject(data: dict[str, Any], location: str, resolve_patient: ReferenceResolver) -> str:
    subject = data.get("subject")
    if subject is None:
        raise MappingError(f"{location}.subject", "is required", code="required")
    literal = as_object(subject, f"{location}.subject").get("reference")
    parsed = parse_reference(literal) if isinstance(literal, str) else None
    if parsed is None or not isinstance(literal, str):
        raise MappingError(f"{location}.subject", "needs a literal Patient reference", code="value")
    if parsed[0] != "Patient":
        raise MappingError(f"{location}.subject", f"{literal!r} is not a Patient", code="value")
    patient_id = resolve_patient(literal)
    if patient_id is None:
        raise MappingError(f"{location}.subject", f"patient {literal!r} is not known here", code="not-found")
    return patient_id


def number(value: Any, location: str) -> float | int:
    """A JSON number; bools are not numbers here (Python says they are)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MappingError(location, f"{value!r} is not a number", code="structure")
    return value
