"""A target's code map, both ways: our standard coding ⇄ the site's own codings for the same thing.

One entry, as an administrator writes it on the sync target (`code_map`):
    "http://loinc.org|44261-6": [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.707679", "code": "3049"}]
says the site's coding (an Epic flowsheet row id, an EHR's own visit type) means the standard coding of the key
(LOINC, SNOMED CT, CPT). Outbound, our coding gets the site's added (service/sync/records.add_site_codings).
Inbound, `add_standard_codings` adds the key's coding to every CodeableConcept of any resource that carries one of
the site's codings, before the intake reads it: the intakes only ever recognise standard codes.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

# site (system, code) -> the standard codings it means, as (system, code, display).
InboundCodeMap = Mapping[tuple[str, str], tuple[dict[str, str], ...]]

# RFC 3986 absolute URI: a scheme, then anything but whitespace (urn:oid:…, http://loinc.org).
_URI: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")


def code_map_problems(code_map: Mapping[str, Iterable[Mapping[str, Any]]]) -> list[str]:
    """Why each bad entry cannot be used, naming it: systems must be URIs, codes non-empty."""
    problems = []
    for key, site_codings in code_map.items():
        system, _, code = key.partition("|")
        if not _URI.fullmatch(system) or not code.strip():
            problems.append(
                f"entry {key!r}: the key must be 'system|code' with the standard code system's URI "
                "(e.g. 'http://loinc.org|44261-6')"
            )
        for n, coding in enumerate(site_codings):
            site_system, site_code = coding.get("system"), coding.get("code")
            if not isinstance(site_system, str) or not _URI.fullmatch(site_system):
                problems.append(
                    f"entry {key!r}, coding {n}: system {site_system!r} is not a URI; give the site's code "
                    "system (e.g. Epic's urn:oid:1.2.840.114350…)"
                )
            if not isinstance(site_code, str) or not site_code.strip():
                problems.append(f"entry {key!r}, coding {n}: code must be non-empty")
    return problems


def inbound_code_map(code_maps: Iterable[Mapping[str, Iterable[Mapping[str, Any]]]]) -> InboundCodeMap:
    """The reverse of one or more targets' code maps: site coding -> the standard codings it means."""
    found: dict[tuple[str, str], list[dict[str, str]]] = {}
    for code_map in code_maps:
        for key, site_codings in code_map.items():
            system, _, code = key.partition("|")
            if not system or not code:
                continue
            standard = {"system": system, "code": code}
            for coding in site_codings:
                site = (coding.get("system"), coding.get("code"))
                if isinstance(site[0], str) and isinstance(site[1], str):
                    known = found.setdefault((site[0], site[1]), [])
                    if standard not in known:
                        known.append(standard)
    return {site: tuple(codes) for site, codes in found.items()}


def add_standard_codings(resource: dict[str, Any], code_map: InboundCodeMap) -> dict[str, Any]:
    """A copy of the resource in which every CodeableConcept holding a mapped site coding also holds the standard
    coding(s) it means (placed first, so readers that take the first coding see the standard one); the resource
    itself when nothing matched."""
    if not code_map or not _matches(resource, code_map):
        return resource
    translated = copy.deepcopy(resource)
    _translate(translated, code_map)
    return translated


def _matches(value: Any, code_map: InboundCodeMap) -> bool:
    if isinstance(value, dict):
        system, code = value.get("system"), value.get("code")
        if isinstance(system, str) and isinstance(code, str) and (system, code) in code_map:
            return True
        return any(_matches(v, code_map) for v in value.values())
    if isinstance(value, list):
        return any(_matches(v, code_map) for v in value)
    return False


def _translate(value: Any, code_map: InboundCodeMap) -> None:
    if isinstance(value, list):
        for item in value:
            _translate(item, code_map)
        return
    if not isinstance(value, dict):
        return
    codings = value.get("coding")
    if isinstance(codings, list):
        present = {(c.get("system"), c.get("code")) for c in codings if isinstance(c, dict)}
        added = []
        for coding in codings:
            if not isinstance(coding, dict):
                continue
            site = (coding.get("system"), coding.get("code"))
            if not (isinstance(site[0], str) and isinstance(site[1], str)):
                continue
            for standard in code_map.get((site[0], site[1]), ()):
                if (standard["system"], standard["code"]) not in present:
                    added.append(dict(standard))
                    present.add((standard["system"], standard["code"]))
        value["coding"] = [*added, *codings]
    for key, item in value.items():
        if key != "coding":
            _translate(item, code_map)
