"""Valid request bodies for each record kind, and a small API driver that creates them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

API = "/api/v1"


def source(prefix: str = "test") -> dict[str, str]:
    return {"system": f"urn:test:{prefix}", "value": uuid.uuid4().hex}


def patient_body(**overrides: Any) -> dict[str, Any]:
    return {
        "source": source("patient"),
        "identifiers": [{"system": "urn:test:mrn", "value": f"MRN-{uuid.uuid4().hex[:10]}"}],
        "family_name": "Testperson",
        "given_name": "Pat",
        "birth_date": "1980-05-17",
        "sex": "female",
        **overrides,
    }


def practitioner_body(**overrides: Any) -> dict[str, Any]:
    return {
        "source": source("practitioner"),
        "family_name": "Berg",
        "given_name": "Signe",
        "role": "therapist",
        **overrides,
    }


def enrollment_body(patient_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "source": source("enrollment"),
        "patient_id": patient_id,
        "protocol_id": "iv-ketamine-cbt",
        "start_date": "2026-10-05",
        **overrides,
    }


def administration_body(patient_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "source": source("administration"),
        "patient_id": patient_id,
        "drug": "ketamine",
        "route": "intravenous",
        "dose_mg_per_kg": 0.5,
        "body_weight_kg": 70,
        "started_at": "2026-10-07T09:00:00+00:00",
        "ended_at": "2026-10-07T09:40:00+00:00",
        "vital_signs": [
            {
                "taken_at": "2026-10-07T08:50:00+00:00",
                "systolic_mmhg": 128,
                "diastolic_mmhg": 82,
                "heart_rate_bpm": 74,
                "spo2_percent": 98,
            }
        ],
        "sedation_score": 4,
        "dissociation_score": 12,
        "observation_minutes": 120,
        **overrides,
    }


def cbt_body(patient_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "source": source("cbt"),
        "patient_id": patient_id,
        "session_number": 1,
        "planned_start": "2026-10-08T14:00:00+00:00",
        "actual_start": "2026-10-08T14:01:00+00:00",
        "actual_end": "2026-10-08T14:50:00+00:00",
        "status": "attended",
        "setting": "video",
        "modules_covered": ["psychoeducation"],
        **overrides,
    }


def appointment_body(patient_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "source": source("appt"),
        "patient_id": patient_id,
        "service": "cbt",
        "status": "booked",
        "start": "2026-10-15T14:00:00+00:00",
        "end": "2026-10-15T14:50:00+00:00",
        **overrides,
    }


# Our published PHQ-9 linkIds (GET /api/v1/instruments/phq-9); bare LOINC codes are accepted too.
PHQ9_LOINC = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"]
PHQ9_ITEMS = [f"/{code}" for code in PHQ9_LOINC]


def questionnaire_body(patient_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "source": source("phq9"),
        "patient_id": patient_id,
        "instrument": "phq-9",
        "authored_at": "2026-10-06T08:30:00+00:00",
        "answers": [{"link_id": code, "value_integer": 1} for code in PHQ9_ITEMS],
        **overrides,
    }


def sync_target_body(**overrides: Any) -> dict[str, Any]:
    # A public address literal: accepted by the URL check without DNS; nothing is ever sent to it in tests.
    return {"name": f"EHR {uuid.uuid4().hex[:6]}", "base_url": "https://93.184.216.34/fhir", **overrides}


# path -> body builder taking a patient id (None for kinds that are not patient-scoped)
def vital_sign_body(patient_id: str, **overrides: Any) -> dict[str, Any]:
    """A screening blood pressure a week before administration_body's session."""
    return {
        "source": source("vital-sign"),
        "patient_id": patient_id,
        "taken_at": "2026-09-30T10:00:00+00:00",
        "loinc": "85354-9",
        "measure": "blood-pressure",
        "systolic_mmhg": 132,
        "diastolic_mmhg": 84,
        **overrides,
    }


PATIENT_RECORD_BODIES = {
    "enrollments": enrollment_body,
    "ketamine-administrations": administration_body,
    "cbt-sessions": cbt_body,
    "questionnaire-responses": questionnaire_body,
    "appointments": appointment_body,
    "vital-signs": vital_sign_body,
}


@dataclass
class ApiDriver:
    client: TestClient
    headers: dict[str, str]

    def create(self, path: str, body: dict[str, Any], expect: int = 201) -> dict[str, Any]:
        response = self.client.post(f"{API}/{path}", json=body, headers=self.headers)
        assert response.status_code == expect, response.text
        result: dict[str, Any] = response.json()
        return result

    def patient(self, **overrides: Any) -> str:
        return str(self.create("patients", patient_body(**overrides))["id"])

    def one_of_each(self, admin_headers: dict[str, str]) -> dict[str, str]:
        """One record of every kind (patient-scoped ones for one patient); returns path -> id."""
        patient_id = self.patient()
        ids = {"patients": patient_id}
        for path, build in PATIENT_RECORD_BODIES.items():
            ids[path] = str(self.create(path, build(patient_id))["id"])
        ids["practitioners"] = str(self.create("practitioners", practitioner_body())["id"])
        admin = ApiDriver(self.client, admin_headers)
        ids["sync/targets"] = str(admin.create("sync/targets", sync_target_body())["id"])
        return ids
