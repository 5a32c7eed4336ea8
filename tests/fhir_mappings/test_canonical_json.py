"""The check mode (release.check_mappers): outside it, build() does not validate what a mapper wrote and to_json
returns that JSON instead of serialising a model. The suite runs with it on (tests/conftest.py), so every mapping
any test makes is validated by fhir.resources and compared with its serialiser (test_outbound_valid.py maps
hundreds of generated records per mapping); these tests pin the rules and that the check bites."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fhir_mappings import patient as patient_mapping
from fhir_mappings import patient_resource, release
from fhir_mappings.identity import instant
from fhir_mappings.release import CanonicalJsonMismatch, Observation, Patient, build, to_json
from tests.fhir_mappings import strategies as s


def _observation(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "PHQ-9 total"}, **elements}


def _serialised(resource: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(resource.model_dump_json())
    return result


def test_the_suite_runs_with_the_check_on() -> None:
    assert release.check_mappers
    assert os.environ["TANDEM_CHECK_MAPPERS"] == "1"  # the servers the suite starts check too


@settings(max_examples=5, deadline=None)
@given(s.patients())
def test_a_broken_mapper_fails_the_check_mode(record: Any) -> None:
    """A mapper that writes an element R4 does not allow (here: a birth date in the US order) is caught by the
    check mode; outside it, the same output would go out as written: why the suite and CI run with the check on."""

    def broken_build(model: type[Patient], data: dict[str, Any]) -> Patient:
        return build(model, {**data, "birthDate": "05/17/1980"})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(patient_mapping, "build", broken_build)
        with pytest.raises(ValidationError, match="birthDate"):
            patient_resource(record, canonical_base=s.BASE)
        patch.setattr(release, "check_mappers", False)
        assert to_json(patient_resource(record, canonical_base=s.BASE))["birthDate"] == "05/17/1980"
    assert to_json(patient_resource(record, canonical_base=s.BASE)).get("birthDate") != "05/17/1980"


def test_outside_the_check_mode_a_built_model_is_an_empty_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing validated, nothing set: to_json answers from the JSON, and reading an element fails loudly."""
    monkeypatch.setattr(release, "check_mappers", False)
    data = _observation(valueQuantity={"value": 0.5, "unit": "mg"})
    shell = build(Observation, data)
    assert to_json(shell) == data
    with pytest.raises(AttributeError):
        _ = shell.status


@given(st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])))
def test_instants_are_written_as_fhir_resources_writes_them(moment: datetime) -> None:
    built = build(Observation, _observation(effectiveDateTime=instant(moment), issued=instant(moment)))
    assert to_json(built) == _serialised(built)
    if moment.utcoffset() == timedelta(0):
        assert to_json(built)["issued"].endswith("Z")


def test_nulls_and_empty_elements_are_left_out_and_the_result_is_a_copy() -> None:
    data = _observation(note=[], valueQuantity={"value": 0.5, "unit": "mg"}, subject=None, category=[{"text": "x"}])
    built = build(Observation, data)
    first = to_json(built)
    assert first == _serialised(built)
    assert "note" not in first and "subject" not in first and first["valueQuantity"] == {"value": 0.5, "unit": "mg"}
    first["category"][0]["text"] = "changed by a caller"
    assert to_json(built)["category"] == [{"text": "x"}]
    assert data["category"] == [{"text": "x"}]


def test_a_model_not_made_by_build_is_serialised() -> None:
    parsed = Observation.model_validate(_observation(issued="2026-11-01T09:00:00.5+00:00"))
    assert to_json(parsed)["issued"] == "2026-11-01T09:00:00.500000Z"


def test_the_check_catches_json_the_serialiser_would_write_differently(monkeypatch: pytest.MonkeyPatch) -> None:
    built = build(Observation, _observation(issued="2026-11-01T09:00:00+00:00"))  # not through instant()
    with pytest.raises(CanonicalJsonMismatch, match="Observation"):
        to_json(built)
    monkeypatch.setattr(release, "check_mappers", False)
    assert to_json(built)["issued"] == "2026-11-01T09:00:00+00:00"  # what production would store: why we check


@pytest.mark.parametrize("value", [1, 0], ids=["1 for true", "0 for false"])
def test_the_check_tells_a_number_from_a_boolean(value: int) -> None:
    built = build(Observation, _observation(valueBoolean=value))  # fhir.resources reads 1/0 as true/false
    with pytest.raises(CanonicalJsonMismatch, match="valueBoolean"):
        to_json(built)
