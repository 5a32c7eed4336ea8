"""The ServiceRequest intake: a referral to the programme becomes an enrolment (fhir_mappings/referral.py).

The protocol is chosen from the referral (our protocol URI, a drug code) or, for a referral that names only the
programme or a site order code, from the sender's rule (a pulled target's `referrals`); it must be one the tenant
has, so a refusal names the element and the protocols to choose from, and nothing is stored.
"""

from __future__ import annotations

from typing import Any

import fhir_mappings as fm
from service.caseload.protocols import available_protocols
from service.records.enrollment import EnrollmentCreate

from .context import Intake, mapped, validated


def take_service_request(intake: Intake, resource: dict[str, Any]) -> EnrollmentCreate:
    known = frozenset(p.id for p in available_protocols(intake.session, intake.tenant_id))
    body = mapped(
        lambda: fm.referral_from_fhir(
            resource,
            canonical_base=intake.canonical_base,
            resolve_patient=intake.resolve,
            source_system=intake.source_system,
            rule=intake.referral_rule,
            known_protocols=known,
        )
    )
    return validated(EnrollmentCreate, body, "ServiceRequest")
