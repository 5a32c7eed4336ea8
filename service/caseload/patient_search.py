"""Finding a patient in the caseload by what a coordinator has at hand: a name, an MRN or a date of birth.

One box takes all three, as on the phone ("Dana Petrov, born 9 March 1984"): an ISO date matches the date of
birth; any other text matches an MRN exactly (case-insensitive) or every word of it a part of the name, accents and
case ignored, so "petrov" finds "Pétrov" and "dana pet" finds "Petrov, Dana".
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import col, select

from service.records.patient import Patient, PatientIdentifier, name_key

MAX_SEARCH_LENGTH = 100
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def patients_matching(tenant_id: str, text: str, patient_id: Any) -> Any:
    """A condition on `patient_id` (a column holding a patient's id): that patient matches `text`."""
    wanted = text.strip()
    if _ISO_DATE.fullmatch(wanted):
        born = date.fromisoformat(wanted)  # the caller has checked it is a real date (`check_search`)
        return patient_id.in_(
            select(Patient.id).where(col(Patient.tenant_id) == tenant_id, col(Patient.birth_date) == born)
        )
    by_mrn = select(PatientIdentifier.patient_id).where(
        col(PatientIdentifier.tenant_id) == tenant_id, func.lower(col(PatientIdentifier.value)) == wanted.lower()
    )
    words = name_key(wanted).split()
    by_name = select(Patient.id).where(
        col(Patient.tenant_id) == tenant_id, *(col(Patient.name_key).contains(w, autoescape=True) for w in words)
    )
    return or_(patient_id.in_(by_mrn), patient_id.in_(by_name))


def check_search(text: str) -> str | None:
    """Why `text` cannot be searched for, or None."""
    wanted = text.strip()
    if not wanted:
        return "is empty: type a name, an MRN or a date of birth (YYYY-MM-DD)"
    if len(wanted) > MAX_SEARCH_LENGTH:
        return f"is longer than {MAX_SEARCH_LENGTH} characters"
    if _ISO_DATE.fullmatch(wanted):
        try:
            date.fromisoformat(wanted)
        except ValueError:
            return f"{wanted!r} is not a date (YYYY-MM-DD)"
    return None
