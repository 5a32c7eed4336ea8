"""A seeded synthetic *programme* for the outcomes page (issue #23): patients enrolled over months, followed long
enough for their response to last or fade, in which (when `cbt_effect` is on) CBT-adherent patients relapse later.

Built with the demo's own record builders (service/demo.py), so it loads through the same store. Each patient
carries what was planted (`Planted`): adherent or not, responder or not, the day the response fades, and whether
the records show a relapse by the engine's rule (two scores back above half the baseline, at least 5 days
apart), so tests can check what the outcomes report says against what the generator did.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from pydantic import BaseModel

from service.clock import now_utc
from service.demo import (
    FAMILY_NAMES,
    GIVEN_NAMES,
    DemoPatient,
    DemoTenant,
    _administration,
    _at,
    _cbt,
    _phq9,
    _source,
)
from service.records.enrollment import EnrollmentCreate
from service.records.patient import PatientCreate
from service.records.practitioner import PractitionerCreate

# Mean days from first response to the response fading (exponential): with the planted CBT effect adherent
# patients keep it about three times as long; without it both groups share the middle mean.
MEAN_DAYS_ADHERENT, MEAN_DAYS_LESS_ADHERENT, MEAN_DAYS_NO_EFFECT = 150.0, 45.0, 80.0
INFUSION_DAYS = (0, 3, 7, 10, 14, 17)
ESKETAMINE_DAYS = (0, 3, 7, 10, 14, 17, 21, 24)


@dataclass(frozen=True)
class Planted:
    adherent: bool
    responder: bool
    esketamine: bool
    fade_day: int | None  # days after the first session the response fades (responders)
    relapse_in_records: bool  # two scores after fade_day are recorded
    discontinued: bool
    skipped_week_8: bool
    baseline: int = 0
    scores: tuple[tuple[int, int], ...] = ()  # (days after the first session, PHQ-9 total) of each follow-up


@dataclass
class ProgrammePatient(DemoPatient):
    planted: Planted = field(default_factory=lambda: Planted(False, False, False, None, False, False, False))


def generate_programme(
    *, seed: int = 23, patients: int = 40, now: datetime | None = None, cbt_effect: bool = True
) -> DemoTenant:
    """`patients` synthetic patients enrolled 6 to 10 months before `now`; every second one CBT adherent."""
    rng = random.Random(seed)
    now = now or now_utc()
    practitioners = [
        PractitionerCreate.model_validate(
            {"source": _source("programme-practitioner", seed, n), "family_name": f, "given_name": g, "role": r}
        )
        for n, (f, g, r) in enumerate([("Berg", "Signe", "therapist"), ("Dlamini", "Zodwa", "coordinator")])
    ]
    made = [_patient(rng, seed, n, now, cbt_effect) for n in range(patients)]
    return DemoTenant(practitioners, list(made))


def _patient(rng: random.Random, seed: int, n: int, now: datetime, cbt_effect: bool) -> ProgrammePatient:
    start = now.date() - timedelta(days=180 + rng.randint(0, 120))
    adherent = n % 2 == 0
    esketamine = n % 5 == 4
    responder = n % 10 != 9
    discontinued = n % 9 == 8
    mean = MEAN_DAYS_NO_EFFECT if not cbt_effect else (MEAN_DAYS_ADHERENT if adherent else MEAN_DAYS_LESS_ADHERENT)
    fade = 14 + round(rng.expovariate(1 / mean)) if responder else None
    stop = min(now.date(), start + timedelta(days=120)) if discontinued else now.date()
    patient = PatientCreate.model_validate(
        {
            "source": _source("programme-patient", seed, n),
            "identifiers": [{"system": "urn:tandem:demo:mrn", "value": f"PROG-{seed}-{n:05d}"}],
            "family_name": rng.choice(FAMILY_NAMES),
            "given_name": rng.choice(GIVEN_NAMES),
            "birth_date": date(rng.randint(1950, 2002), rng.randint(1, 12), rng.randint(1, 28)).isoformat(),
            "sex": rng.choice(["female", "male"]),
        }
    )
    enrollment = EnrollmentCreate.model_validate(
        {
            "source": _source("programme-enrollment", seed, n),
            "patient_id": "pending",
            "protocol_id": "esketamine-cbt" if esketamine else "iv-ketamine-cbt",
            "start_date": start.isoformat(),
            "status": "discontinued" if discontinued else ("completed" if n % 7 == 6 else "active"),
            "status_reason": "moved out of the area" if discontinued else None,
        }
    )
    baseline, records, scores = _records(rng, seed, n, start, stop, now, adherent, esketamine, responder, fade)
    skipped = n % 13 == 3  # three patients in forty miss every score around week 8
    if skipped:
        records = [r for r in records if not _in_week_8(r, start)]
        scores = [(d, t) for d, t in scores if not 49 <= d <= 63]
    high_after = [d for d, _ in scores if fade is not None and d >= fade]
    planted = Planted(
        adherent=adherent,
        responder=responder,
        esketamine=esketamine,
        fade_day=fade,
        relapse_in_records=len(high_after) >= 2 and high_after[-1] - high_after[0] >= 5,
        discontinued=discontinued,
        skipped_week_8=skipped,
        baseline=baseline,
        scores=tuple(scores),
    )
    return ProgrammePatient(patient, enrollment, records, planted)


def _measure_days(stop_day: int) -> list[int]:
    """Weekly to week 12, then every two weeks."""
    days = [7 * w for w in range(1, 13)] + list(range(98, 400, 14))
    return [d for d in days if d <= stop_day]


def _records(
    rng: random.Random,
    seed: int,
    n: int,
    start: date,
    stop: date,
    now: datetime,
    adherent: bool,
    esketamine: bool,
    responder: bool,
    fade: int | None,
) -> tuple[int, list[BaseModel], list[tuple[int, int]]]:
    baseline = rng.randint(16, 24)
    out: list[BaseModel] = [_phq9(rng, seed, n, 0, _at(start - timedelta(days=2), 9), baseline, 0)]
    for k, d in enumerate(ESKETAMINE_DAYS if esketamine else INFUSION_DAYS):
        out.append(_administration(rng, seed, n, k, start + timedelta(days=d), esketamine, now))
    for s in range(12):
        day = start + timedelta(days=2 + 7 * s)
        if day >= stop:
            break
        # Adherent: every session; less adherent: about one in three of the first eight, then half.
        attends = adherent or (s % 3 == 0 if s < 8 else s % 2 == 0)
        out.append(_cbt(seed, n, s, day, "attended" if attends else rng.choice(["no-show", "cancelled"]), rng))
    scores = []
    for k, d in enumerate(_measure_days((stop - start).days), start=1):
        authored = _at(start + timedelta(days=d), 8, 30)
        if authored > now:
            break  # nothing is recorded as having happened after now
        if responder and fade is not None and d < fade:
            total = rng.randint(2, max(2, baseline * 2 // 5))
        else:
            total = rng.randint(baseline * 3 // 5 + 1, baseline)
        out.append(_phq9(rng, seed, n, k, authored, total, 0))
        scores.append((d, total))
    return baseline, out, scores


def _in_week_8(record: BaseModel, start: date) -> bool:
    authored = getattr(record, "authored_at", None)
    return authored is not None and 49 <= (authored.date() - start).days <= 63
