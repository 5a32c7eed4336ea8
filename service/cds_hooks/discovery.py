"""The services Tandem offers (CDS Hooks 2.0 §Discovery) and what it asks the EHR to prefetch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PATIENT_PREFETCH = {"patient": "Patient/{{context.patientId}}"}


@dataclass(frozen=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str]


SERVICES: dict[str, CdsService] = {
    service.id: service
    for service in (
        CdsService(
            id="tandem-plan-status",
            hook="patient-view",
            title="Ketamine/esketamine + CBT plan status",
            description=(
                "When a chart opens: the patient's combined ketamine/esketamine + CBT plan status and phase, urgent "
                "findings first (critical: at risk; warning: needs attention; info: on track), what is due next, "
                "and a link to the patient's page in Tandem. No card for a patient Tandem does not follow."
            ),
            prefetch=PATIENT_PREFETCH,
        ),
        CdsService(
            id="tandem-plan-status-booking",
            hook="appointment-book",
            title="Ketamine/esketamine + CBT plan status when booking",
            description=(
                "When an appointment is booked for a patient in the programme: the same plan status card, so the "
                "scheduler sees an open urgent finding or an overdue session before booking."
            ),
            prefetch=PATIENT_PREFETCH,
        ),
    )
}


def discovery_document() -> dict[str, Any]:
    return {
        "services": [
            {"hook": s.hook, "title": s.title, "description": s.description, "id": s.id, "prefetch": s.prefetch}
            for s in SERVICES.values()
        ]
    }
