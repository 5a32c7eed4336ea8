"""A seeded generator of synthetic patients at different points of a combined ketamine + CBT plan.

Everything is fake (names from short lists, MRNs with a DEMO prefix). The same seed and moment always give
the same records, so the demo, the tests and the benchmarks can share it. Records carry source identifiers, so
loading twice adds nothing.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel

from service.clock import now_utc
from service.instruments import INSTRUMENTS, Item
from service.records.cbt import CbtSessionCreate
from service.records.enrollment import EnrollmentCreate
from service.records.ketamine import KetamineAdministrationCreate
from service.records.patient import PatientCreate
from service.records.practitioner import PractitionerCreate
from service.records.questionnaire import QuestionnaireResponseCreate

DEMO_SOURCE = "urn:tandem:demo"
DEMO_MRN_SYSTEM = "urn:tandem:demo:mrn"
FAMILY_NAMES = [
    "Abara",
    "Brennan",
    "Castillo",
    "Dube",
    "Eriksen",
    "Farouk",
    "Gallagher",
    "Haddad",
    "Ito",
    "Jansen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okonkwo",
    "Petrov",
    "Quinn",
    "Rossi",
    "Silva",
    "Tan",
]
GIVEN_NAMES = [
    "Alex",
    "Bea",
    "Chen",
    "Dana",
    "Eli",
    "Fatima",
    "Gus",
    "Hana",
    "Ivo",
    "Jo",
    "Kai",
    "Lena",
    "Mo",
    "Nia",
    "Omar",
    "Pia",
    "Ravi",
    "Sana",
    "Tom",
    "Uma",
]
# The PHQ-9 as we publish it: its scored items, and each item's answer code by ordinal value (LL358-3).
PHQ9 = INSTRUMENTS["phq-9"]
PHQ9_ITEMS = [item.link_id for item in PHQ9.scored_items]
# Where in the programme a demo patient is, in days since enrollment.
PLAN_POINTS = [3, 8, 12, 17, 24, 35, 50, 70, 95, 120]
# Demo clinic hours (UTC): infusions at 09:00, observed for two hours (the REMS minimum for esketamine, and the
# demo's `observation_minutes`); CBT at 14:00 for 50 minutes.
OBSERVATION = timedelta(minutes=120)
CBT_HOUR = 14
CBT_LENGTH = timedelta(minutes=50)


@dataclass
class DemoPatient:
    """One patient's records, in the order they must be written."""

    patient: PatientCreate
    enrollment: EnrollmentCreate
    records: list[BaseModel] = field(default_factory=list)


@dataclass
class DemoTenant:
    practitioners: list[PractitionerCreate]
    patients: list[DemoPatient]


def _source(kind: str, *parts: object) -> dict[str, str]:
    return {"system": f"{DEMO_SOURCE}:{kind}", "value": "-".join(str(p) for p in parts)}


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def generate_demo_tenant(*, seed: int = 7, patients: int = 36, now: datetime | None = None) -> DemoTenant:
    """Records for `patients` synthetic patients, dated relative to `now` (default: the clock's now).

    Nothing is recorded as having happened after `now`: a session later today is still planned, an infusion this
    afternoon is not there yet, a REMS form due tomorrow is not submitted. A coordinator reading the demo at 07:00
    must not see a 14:00 session as attended.
    """
    rng = random.Random(seed)
    now = now or now_utc()
    practitioners = [
        PractitionerCreate.model_validate(
            {
                "source": _source("practitioner", seed, n),
                "family_name": name,
                "given_name": given,
                "role": role,
            }
        )
        for n, (name, given, role) in enumerate(
            [
                ("Adeyemi", "Tola", "psychiatrist"),
                ("Berg", "Signe", "therapist"),
                ("Costa", "Rui", "therapist"),
                ("Dlamini", "Zodwa", "coordinator"),
                ("Evans", "Mari", "coordinator"),
            ]
        )
    ]
    return DemoTenant(practitioners, [_patient(rng, seed, n, now) for n in range(patients)])


def _patient(rng: random.Random, seed: int, n: int, now: datetime) -> DemoPatient:
    days_in = PLAN_POINTS[n % len(PLAN_POINTS)] + rng.randint(0, 3)
    start = now.date() - timedelta(days=days_in)
    esketamine = n % 3 == 2
    patient = PatientCreate.model_validate(
        {
            "source": _source("patient", seed, n),
            "identifiers": [{"system": DEMO_MRN_SYSTEM, "value": f"DEMO-{seed}-{n:05d}"}],
            "family_name": rng.choice(FAMILY_NAMES),
            "given_name": rng.choice(GIVEN_NAMES),
            "birth_date": date(rng.randint(1950, 2002), rng.randint(1, 12), rng.randint(1, 28)).isoformat(),
            "sex": rng.choice(["female", "male", "female", "male", "other"]),
        }
    )
    status = "discontinued" if n % 17 == 16 else "active"
    enrollment = EnrollmentCreate.model_validate(
        {
            "source": _source("enrollment", seed, n),
            "patient_id": "pending",
            "protocol_id": "esketamine-cbt" if esketamine else "iv-ketamine-cbt",
            "start_date": start.isoformat(),
            "status": status,
            "status_reason": "moved out of the area" if status == "discontinued" else None,
            "treatment_resistant": rng.random() < 0.7,
        }
    )
    demo = DemoPatient(patient, enrollment)
    demo.records.extend(_course(rng, seed, n, start, now, esketamine))
    return demo


def _course(rng: random.Random, seed: int, n: int, start: date, now: datetime, esketamine: bool) -> Iterator[BaseModel]:
    baseline = rng.randint(15, 24)
    responder = rng.random() < 0.6
    yield _phq9(rng, seed, n, 0, _at(start - timedelta(days=2), 9), baseline, item9=1 if n % 11 == 5 else 0)
    infusion_days = [start + timedelta(days=d) for d in (0, 3, 7, 10, 14, 17)]
    # The day's infusion is recorded once its observation period has ended; the PHQ-9 before it (08:30) with it.
    for k, day in enumerate(d for d in infusion_days if _at(d, 9) + OBSERVATION <= now):
        if n % 13 == 7 and k == 3:
            continue  # a missed infusion: the plan status should notice
        yield _administration(rng, seed, n, k, day, esketamine, now)
        score = max(0, baseline - (k + 1) * (3 if responder else 1) + rng.randint(-1, 1))
        yield _phq9(rng, seed, n, k + 1, _at(day, 8, 30), score, item9=1 if n % 19 == 4 and k == 2 else 0)
    for s in range(12):
        day = start + timedelta(days=2 + 7 * s)
        if day > now.date():
            break
        if _at(day, CBT_HOUR) + CBT_LENGTH > now:
            status = "planned"  # later today (or under way): nothing has happened yet
        else:
            status = "no-show" if (n % 7 == 3 and s in (2, 3)) else "attended"
        yield _cbt(seed, n, s, day, status, rng)


def _phq9(rng: random.Random, seed: int, n: int, k: int, authored: datetime, total: int, item9: int) -> BaseModel:
    remaining = max(0, min(total - item9, 24))
    ordinals = [0] * 8
    while remaining > 0:
        slot = rng.randrange(8)
        if ordinals[slot] < 3:
            ordinals[slot] += 1
            remaining -= 1
    answers = [
        {"link_id": item.link_id, "value_coding": _answer(item, value)}
        for item, value in zip(PHQ9.scored_items, [*ordinals, item9], strict=True)
    ]
    return QuestionnaireResponseCreate.model_validate(
        {
            "source": _source("phq9", seed, n, k),
            "patient_id": "pending",
            "instrument": "phq-9",
            "authored_at": authored.isoformat(),
            "answers": answers,
        }
    )


def _answer(item: Item, score: int) -> dict[str, str | None]:
    option = next(o for o in item.options if o.score == score)
    return {"system": option.system, "code": option.code}


def _administration(
    rng: random.Random, seed: int, n: int, k: int, day: date, esketamine: bool, now: datetime
) -> BaseModel:
    start = _at(day, 9)
    systolic = rng.randint(112, 150) if not (n % 23 == 9 and k == 1) else 186
    common = {
        "source": _source("administration", seed, n, k),
        "patient_id": "pending",
        "started_at": start.isoformat(),
        "vital_signs": [
            {
                "taken_at": (start - timedelta(minutes=10)).isoformat(),
                "systolic_mmhg": rng.randint(110, 138),
                "diastolic_mmhg": rng.randint(68, 86),
                "heart_rate_bpm": rng.randint(60, 88),
                "spo2_percent": 98,
            },
            {
                "taken_at": (start + timedelta(minutes=40)).isoformat(),
                "systolic_mmhg": systolic,
                "diastolic_mmhg": rng.randint(74, 95) if systolic < 180 else 112,
                "heart_rate_bpm": rng.randint(64, 96),
                "spo2_percent": rng.randint(95, 99),
            },
        ],
        "sedation_score": rng.choice([3, 4, 4, 5, 5]),
        "dissociation_score": rng.randint(4, 30),
        "observation_minutes": 120,
        "lot_number": f"LOT{seed}{k:02d}",
    }
    if esketamine:
        return KetamineAdministrationCreate.model_validate(
            {
                **common,
                "drug": "esketamine",
                "route": "intranasal",
                "dose_mg": 56 if k == 0 else 84,
                "ended_at": (start + timedelta(minutes=10)).isoformat(),
                "rems_form_submitted_at": _if_past(start + timedelta(days=2), now),
            }
        )
    weight = round(rng.uniform(55, 105), 1)
    return KetamineAdministrationCreate.model_validate(
        {
            **common,
            "drug": "ketamine",
            "route": "intravenous",
            "dose_mg_per_kg": 0.5,
            "body_weight_kg": weight,
            "ended_at": (start + timedelta(minutes=40)).isoformat(),
        }
    )


def _if_past(when: datetime, now: datetime) -> str | None:
    return when.isoformat() if when <= now else None


def _cbt(seed: int, n: int, s: int, day: date, status: str, rng: random.Random) -> BaseModel:
    planned = _at(day, CBT_HOUR)
    attended = status == "attended"
    return CbtSessionCreate.model_validate(
        {
            "source": _source("cbt", seed, n, s),
            "patient_id": "pending",
            "session_number": s + 1,
            "planned_start": planned.isoformat(),
            "actual_start": planned.isoformat() if attended else None,
            "actual_end": (planned + CBT_LENGTH).isoformat() if attended else None,
            "status": status,
            "setting": rng.choice(["in-person", "video"]),
            "modules_covered": ["psychoeducation"] if s == 0 else (["behavioural activation"] if attended else []),
        }
    )
