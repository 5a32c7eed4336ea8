"""The code map both ways, as pure functions: the site's coding gets the standard one, in any resource."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappings import add_standard_codings, code_map_problems, inbound_code_map

pytestmark = pytest.mark.pure

LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
EPIC_ROW = "urn:oid:1.2.840.114350.1.13.0.1.7.2.707679"
EPIC_VISIT = "urn:oid:1.2.840.114350.1.13.0.1.7.10.698084.30"
MAP: dict[str, list[dict[str, str]]] = {
    f"{LOINC}|44261-6": [{"system": EPIC_ROW, "code": "3049"}],
    f"{CPT}|90837": [{"system": EPIC_VISIT, "code": "1001"}],
}


def test_a_site_coding_gets_the_standard_coding_first_in_every_concept_of_any_resource() -> None:
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "type": [{"coding": [{"system": EPIC_VISIT, "code": "1001", "display": "Therapy 60"}]}],
        "reasonCode": [{"coding": [{"system": "urn:other", "code": "x"}]}],
    }
    translated = add_standard_codings(encounter, inbound_code_map([MAP]))
    assert translated["type"][0]["coding"] == [
        {"system": CPT, "code": "90837"},
        {"system": EPIC_VISIT, "code": "1001", "display": "Therapy 60"},
    ]
    assert translated["reasonCode"] == encounter["reasonCode"]
    assert encounter["type"][0]["coding"][0]["system"] == EPIC_VISIT  # the input is not changed


def test_components_are_translated_and_a_present_standard_coding_is_not_repeated() -> None:
    observation = {
        "code": {"coding": [{"system": LOINC, "code": "44261-6"}, {"system": EPIC_ROW, "code": "3049"}]},
        "component": [{"code": {"coding": [{"system": EPIC_ROW, "code": "3049"}]}}],
    }
    translated = add_standard_codings(observation, inbound_code_map([MAP]))
    assert [c["code"] for c in translated["code"]["coding"]] == ["44261-6", "3049"]
    assert [c["code"] for c in translated["component"][0]["code"]["coding"]] == ["44261-6", "3049"]


def test_nothing_mapped_returns_the_resource_itself() -> None:
    resource = {"code": {"coding": [{"system": EPIC_ROW, "code": "9999"}]}}
    assert add_standard_codings(resource, inbound_code_map([MAP])) is resource
    assert add_standard_codings(resource, {}) is resource


def test_several_targets_maps_are_merged() -> None:
    other = {f"{LOINC}|70274-6": [{"system": EPIC_ROW, "code": "3050"}]}
    both = inbound_code_map([MAP, other])
    assert both[(EPIC_ROW, "3050")] == ({"system": LOINC, "code": "70274-6"},)
    assert both[(EPIC_ROW, "3049")] == ({"system": LOINC, "code": "44261-6"},)


def test_entries_are_checked_and_named() -> None:
    assert code_map_problems(MAP) == []
    problems = code_map_problems({"44261-6": [{"system": "flowsheet", "code": ""}]})
    assert [p.split(":")[0] for p in problems] == [
        "entry '44261-6'",
        "entry '44261-6', coding 0",
        "entry '44261-6', coding 0",
    ]
