"""Small readers over FHIR JSON dicts that raise IntakeError with a location instead of KeyError/TypeError."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from .codes import LOINC
from .errors import IntakeError

_LOINC_CODE = re.compile(r"(\d{1,6}-\d)$")


def as_object(value: Any, location: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise IntakeError(location, f"expected a JSON object, got {type(value).__name__}")
    return value


def as_list(value: Any, location: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise IntakeError(location, f"expected a JSON array, got {type(value).__name__}")
    return value


def optional_str(value: Any, location: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise IntakeError(location, f"expected a string, got {type(value).__name__}")
    return value


def required_str(value: Any, location: str) -> str:
    text = optional_str(value, location)
    if not text:
        raise IntakeError(location, "is required")
    return text


def number(value: Any, location: str) -> float:
    # bool is an int subclass in Python but never a FHIR decimal.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IntakeError(location, f"expected a number, got {value!r}")
    return float(value)


def loinc_in_link_id(link_id: str) -> str | None:
    """LOINC code a linkId carries, as in US Core and LHC-Forms ("/44250-9")."""
    match = _LOINC_CODE.search(link_id)
    return match.group(1) if match else None


def loinc_codes(item: Mapping[str, Any], location: str) -> list[str]:
    """LOINC codes on a Questionnaire item's code; a coding without system counts (uwcirg GAD-7)."""
    codes = []
    for index, raw in enumerate(as_list(item.get("code"), f"{location}.code")):
        coding = as_object(raw, f"{location}.code[{index}]")
        if coding.get("system") in (None, LOINC) and isinstance(coding.get("code"), str):
            codes.append(coding["code"])
    return codes


def extensions(element: Mapping[str, Any], url: str, location: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for index, raw in enumerate(as_list(element.get("extension"), f"{location}.extension")):
        extension = as_object(raw, f"{location}.extension[{index}]")
        if extension.get("url") == url:
            yield f"{location}.extension[{index}]", extension


def coding_key(system: str | None, code: str) -> str:
    return f"{system or ''}|{code}"


def lookup_coding(table: Mapping[str, int], system: str | None, code: str) -> int | None:
    """Value for a coding; a missing system on either side matches any system, if that is unambiguous."""
    exact = table.get(coding_key(system, code))
    if exact is not None:
        return exact
    if system is not None:
        return table.get(coding_key(None, code))
    values = {value for key, value in table.items() if key.split("|", 1)[1] == code}
    return values.pop() if len(values) == 1 else None
