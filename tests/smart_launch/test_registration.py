"""`tandem smart register`: what an operator may register, and what is refused in words (exit 2, nothing stored)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from service.settings import Settings
from service.smart_launch.tables import SmartRegistration
from tests.smart_launch.conftest import CALLBACK, CLIENT_ID, Hospital, new_hospital, register_with_cli
from tests.smart_launch.ehr_server import EhrServer


@pytest.fixture
def hospital(
    tandem: TestClient, smart_settings: Settings, ehr_server: EhrServer, monkeypatch: pytest.MonkeyPatch
) -> Hospital:
    return new_hospital(tandem, smart_settings, ehr_server, monkeypatch)


def test_bad_registrations_are_refused_in_words_and_store_nothing(
    tandem: TestClient,
    hospital: Hospital,
    smart_settings: Settings,
    ehr_server: EhrServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = new_hospital(tandem, smart_settings, ehr_server, monkeypatch)
    fresh = ehr_server.add(f"fresh-{hospital.tenant}", client_id=CLIENT_ID, redirect_uri=CALLBACK)
    base = ["--client-id", CLIENT_ID, "--redirect-uri", CALLBACK]
    refusals = {
        "TANDEM_SMART_CLIENT_SECRET_<NAME>": [
            *base,
            "--role",
            "Practitioner=clinician",
            "--client-secret-env",
            "TANDEM_DEV_TOKEN_SECRET",
        ],
        "the role must be one of clinician, coordinator": [*base, "--role", "Practitioner=admin"],
        "the user's type must be one of": [*base, "--role", "Patient=clinician"],
        "Missing option '--role'": base,
        "must ask for `openid fhirUser`": [*base, "--role", "Practitioner=clinician", "--scope", "launch patient/*.rs"],
        "is not an origin": [*base, "--role", "Practitioner=clinician", "--frame-origin", "https://ehr.example/app"],
        "must be Tandem's callback": [
            "--client-id",
            CLIENT_ID,
            "--redirect-uri",
            "https://elsewhere.example/cb",
            "--role",
            "Practitioner=clinician",
        ],
    }
    for words, options in refusals.items():
        code, said = register_with_cli(monkeypatch, smart_settings.database_url, hospital.tenant, fresh.iss, *options)
        assert code == 2 and words in said, (words, said)
    # another hospital's EHR cannot be taken over
    code, said = register_with_cli(
        monkeypatch,
        smart_settings.database_url,
        hospital.tenant,
        other.ehr.iss,
        *base,
        "--role",
        "Practitioner=clinician",
    )
    assert code == 2 and "another hospital" in said
    # an EHR on a non-public address the operator did not allow (SSRF rules of sync targets)
    code, said = register_with_cli(
        monkeypatch,
        smart_settings.database_url,
        hospital.tenant,
        "https://10.1.2.3/fhir",
        *base,
        "--role",
        "Practitioner=clinician",
    )
    assert code == 2 and "non-public address" in said
    with Session(tandem.app.state.engine) as session:  # type: ignore[attr-defined]
        stored = session.exec(
            select(SmartRegistration).where(col(SmartRegistration.tenant_id) == hospital.tenant)
        ).all()
    assert [r.iss for r in stored] == [hospital.ehr.iss]


def test_a_confidential_client_sends_its_secret_from_the_named_variable(
    tandem: TestClient,
    hospital: Hospital,
    smart_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, said = register_with_cli(
        monkeypatch,
        smart_settings.database_url,
        hospital.tenant,
        hospital.ehr.iss,
        "--client-id",
        CLIENT_ID,
        "--redirect-uri",
        CALLBACK,
        "--role",
        "Practitioner=clinician",
        "--client-secret-env",
        "TANDEM_SMART_CLIENT_SECRET_TEST",
    )
    assert code == 0 and "confidential" in said, said
    monkeypatch.delenv("TANDEM_SMART_CLIENT_SECRET_TEST", raising=False)
    from tests.smart_launch.conftest import ehr_patient, walk

    hospital.ehr.patients["ehr-c1"] = ehr_patient("ehr-c1", hospital.mrn)
    answers = walk(tandem, f"/smart/launch?iss={hospital.ehr.iss}&launch={hospital.ehr.new_launch('ehr-c1')}")
    assert answers[-1].status_code == 400 and "TANDEM_SMART_CLIENT_SECRET_TEST is not set" in answers[-1].text
