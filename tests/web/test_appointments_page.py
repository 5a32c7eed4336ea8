"""A CBT session booked in the EHR (FHIR Appointment) is the next CBT due on the patient page and the caseload page,
and a no-show appointment shows in the timeline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from tests.builders import ApiDriver
from tests.fhir.test_appointments import appointment
from tests.web.conftest import NOW, Browser, enrolled_patient, phq9, unique

FHIR = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}


def test_the_booked_appointment_is_the_next_cbt_due_on_the_pages(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str
) -> None:
    api = api_as(tenant)
    family = unique("Booked")
    patient_id = enrolled_patient(api, family_name=family)
    api.create("questionnaire-responses", phq9(patient_id, 1))
    start = (NOW + timedelta(days=2)).replace(hour=14, minute=0, second=0, microsecond=0)
    booked = appointment(patient_id, start=start.isoformat(), end=(start + timedelta(minutes=50)).isoformat())
    missed_at = NOW - timedelta(days=1)
    missed = appointment(
        patient_id,
        status="noshow",
        start=missed_at.isoformat(),
        end=(missed_at + timedelta(minutes=50)).isoformat(),
    )
    for resource in (booked, missed):
        created = api.client.post("/fhir/Appointment", json=resource, headers={**api.headers, **FHIR})
        assert created.status_code == 201, created.text
    b = browser()
    b.sign_in(tenant, "coordinator")
    page = b.get(f"/patients/{patient_id}")
    assert page.status_code == 200
    due_line = next(line for line in page.text.splitlines() if "CBT session due" in line)
    assert "(booked)" in due_line and start.strftime("%d %b %Y %H:%M") in due_line
    assert "CBT session appointment: no-show" in page.text
    caseload = b.get("/", params={"q": family})
    assert caseload.status_code == 200
    assert any("CBT session" in line and start.strftime("%d %b %Y") in line for line in caseload.text.splitlines()), (
        caseload.text
    )
