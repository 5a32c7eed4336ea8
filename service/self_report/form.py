"""The patient's side of an invitation: the link opened, answers saved one by one, the crisis path, submission.

The link's token is the patient's only credential: it is looked up by its hash, and an unknown, tampered,
expired, used or cancelled one (or one whose patient is not its hospital's) is refused (`LinkUnusable`) before
anything is read or stored. The questions are the instrument's own items in their published wording
(service/instruments/definitions), with the instrument's skip logic (the C-SSRS screener asks Q3-Q5 only after a
yes to Q2, and Q7 only after a yes to Q6).

Safety first: an answer that needs help now (PHQ-9 item 9 above 0, a C-SSRS "yes") shows the crisis resources
on the very next screen, and the answers so far are written at once as an in-progress QuestionnaireResponse, so
the plan status raises the urgent reason for the care team before the rest is answered. Submission completes it
(or writes it): author and source the Patient, authored the submission time, through the store's one write path
(record_store.store), which scores it, refreshes the plan status, publishes it on /fhir and queues it for the EHRs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlmodel import Session, col, select

from service.audit_trail import AuditIntent, RequestContext, record_success
from service.auth.principal import Principal
from service.instruments.answers import Coding, ItemAnswer
from service.instruments.codes import YES
from service.instruments.instrument import AnswerOption, Instrument, Item
from service.instruments.registry import INSTRUMENTS
from service.record_store import store
from service.record_store.kinds import QUESTIONNAIRE_RESPONSES
from service.records.base import SourceIdentifier
from service.records.patient import Patient
from service.records.questionnaire import QuestionnaireResponse, QuestionnaireResponseCreate, ResponseParty
from service.self_report.invitations import (
    INVITATION_KIND,
    OPEN_STATUSES,
    PATIENT_ROLE,
    cancel_pending_messages,
    current_status,
    hash_token,
    well_formed,
)
from service.self_report.tables import Invitation
from service.settings import Settings

Unusable = Literal["unknown", "expired", "used", "cancelled"]
# The source identifier of a response answered through a link: one response per invitation, whatever happens.
SELF_REPORT_SOURCE = "urn:tandem:self-report"
# C-SSRS screener skip logic (Posner 2011 screener): question -> the question whose "yes" asks it.
_ASKED_AFTER_YES = {"/93248-3": "/93247-5", "/93249-1": "/93247-5", "/93250-9": "/93247-5", "/93269-9": "/93267-3"}
# A C-SSRS "yes" to any of these shows the crisis resources (the screen is positive from a wish to be dead on).
# An optional question passed over (saved with no answer): not asked again, not in the response.
SKIPPED = ""
_CSSRS_CRISIS = frozenset({"/93246-7", "/93247-5", "/93248-3", "/93249-1", "/93250-9", "/93267-3", "/93269-9"})


class LinkUnusable(Exception):
    """The link opens nothing: `kind` says which kind page to show; 404 for unknown, 410 for the others."""

    def __init__(self, kind: Unusable) -> None:
        super().__init__(kind)
        self.kind = kind
        self.status_code = 404 if kind == "unknown" else 410


class AnswerRefused(Exception):
    """An answer that is not one of the question's choices (or names no question): nothing is stored."""

    def __init__(self, link_id: str, reason: Literal["choose_one", "not_an_answer"]) -> None:
        super().__init__(reason)
        self.link_id = link_id
        self.reason = reason


class AnswersMissing(Exception):
    def __init__(self, link_ids: list[str]) -> None:
        super().__init__(", ".join(link_ids))
        self.link_ids = link_ids


@dataclass(frozen=True)
class Question:
    number: int  # 1-based, among the questions asked
    item: Item
    answer_code: str | None

    @property
    def link_id(self) -> str:
        return self.item.link_id

    @property
    def options(self) -> tuple[AnswerOption, ...]:
        return self.item.options


# ---- the link ---------------------------------------------------------------------------------------------------


def find_invitation(session: Session, token: str, *, now: datetime) -> Invitation:
    """The open invitation of this token, or LinkUnusable. A malformed token is refused without a query."""
    if not well_formed(token):
        raise LinkUnusable("unknown")
    invitation = session.exec(select(Invitation).where(col(Invitation.token_hash) == hash_token(token))).first()
    if invitation is None:
        raise LinkUnusable("unknown")
    # The invitation's patient must be its own hospital's (tenant-scoped like every read).
    patient = session.exec(
        select(Patient.id).where(
            col(Patient.tenant_id) == invitation.tenant_id, col(Patient.id) == invitation.patient_id
        )
    ).first()
    if patient is None:
        raise LinkUnusable("unknown")
    status = current_status(invitation, now)
    if status == "completed":
        raise LinkUnusable("used")
    if status in ("expired", "cancelled"):
        raise LinkUnusable(status)
    return invitation


def patient_context(invitation: Invitation, settings: Settings, request_id: str) -> RequestContext:
    """The patient answering through their link, as the caller of the store: audited as Patient/<id>."""
    principal = Principal(
        subject=f"Patient/{invitation.patient_id}", tenant_id=invitation.tenant_id, role=PATIENT_ROLE, scopes=None
    )
    # They see their own record, restricted or not; the link reaches nothing else.
    return RequestContext(principal=principal, request_id=request_id, settings=settings, hidden_patients=frozenset())


def mark_opened(session: Session, ctx: RequestContext, invitation: Invitation, *, now: datetime) -> None:
    """Each opening is audited; the first moves a sent invitation to opened."""
    ctx.intent = AuditIntent("read", INVITATION_KIND, record_id=invitation.id, patient_id=invitation.patient_id)
    if invitation.status == "sent":
        invitation.status, invitation.opened_at, invitation.updated_at = "opened", now, now
        session.add(invitation)
    record_success(session, ctx, status_code=200, patient_ids=[invitation.patient_id])


# ---- the questions ----------------------------------------------------------------------------------------------


def instrument_of(invitation: Invitation) -> Instrument:
    return INSTRUMENTS[invitation.instrument]


def saved_codes(invitation: Invitation) -> dict[str, str]:
    """link id -> the answer's code; an optional question the patient passed over is "" (SKIPPED)."""
    return {a["link_id"]: a["value_coding"]["code"] if a.get("value_coding") else SKIPPED for a in invitation.answers}


def _item_answers(invitation: Invitation) -> list[ItemAnswer]:
    return [ItemAnswer.model_validate(a) for a in invitation.answers if a.get("value_coding")]


def questions(instrument: Instrument, codes: dict[str, str]) -> list[Question]:
    """The questions asked, in order, given the answers so far (skip logic); the sender-only items (a risk level
    the sender concluded) are never asked."""
    asked = [
        item
        for item in instrument.items
        if item.options
        and not item.any_code
        and (item.link_id not in _ASKED_AFTER_YES or codes.get(_ASKED_AFTER_YES[item.link_id]) == YES)
    ]
    return [Question(number, item, codes.get(item.link_id)) for number, item in enumerate(asked, start=1)]


def next_question(instrument: Instrument, codes: dict[str, str]) -> Question | None:
    """The first question asked and not answered (an optional one too: it is offered once, in order)."""
    return next((q for q in questions(instrument, codes) if q.answer_code is None), None)


def needs_help_now(instrument: Instrument, codes: dict[str, str]) -> bool:
    """An answer so far that shows the crisis resources."""
    for question in questions(instrument, codes):
        code = question.answer_code
        if not code:
            continue
        option = next(o for o in question.options if o.code == code)
        safety = question.item.safety
        if safety is not None and option.score is not None and option.score >= safety.min_score:
            return True
        if instrument.key == "c-ssrs-screener" and question.link_id in _CSSRS_CRISIS and code == YES:
            return True
    return False


# ---- answering --------------------------------------------------------------------------------------------------


def save_answer(
    session: Session, ctx: RequestContext, invitation: Invitation, link_id: str, code: str, *, now: datetime
) -> bool:
    """Keep one answer (replacing an earlier one to the same question); returns whether the crisis resources show.

    A question not asked now, or a code not among its answers, is refused (AnswerRefused) and nothing changes.
    When the answers so far need help now, they are written at once as an in-progress QuestionnaireResponse."""
    instrument = instrument_of(invitation)
    codes = saved_codes(invitation)
    question = next((q for q in questions(instrument, codes) if q.link_id == link_id), None)
    if question is None:
        raise AnswerRefused(link_id, "not_an_answer")
    if not code and question.item.required:
        raise AnswerRefused(link_id, "choose_one")
    if code and not any(o.code == code for o in question.options):
        raise AnswerRefused(link_id, "not_an_answer")
    ctx.intent = AuditIntent("update", INVITATION_KIND, record_id=invitation.id, patient_id=invitation.patient_id)
    codes[link_id] = code
    asked = {q.link_id for q in questions(instrument, codes)}  # a changed answer may un-ask later questions
    invitation.answers = [_answer(instrument, lid, c) for lid, c in codes.items() if lid in asked]
    invitation.status = "partially_answered"
    invitation.updated_at = now
    session.add(invitation)
    record_success(session, ctx, status_code=200, patient_ids=[invitation.patient_id])
    crisis = needs_help_now(instrument, {k: v for k, v in codes.items() if k in asked})
    if crisis or invitation.response_id is not None:
        # Once written, the evidence follows every later answer (a changed answer too: the response's history
        # on /fhir keeps the version that raised the reason).
        _write_response(session, ctx, invitation, status="in-progress", now=now)
    return crisis


def submit(session: Session, ctx: RequestContext, invitation: Invitation, *, now: datetime) -> str:
    """Write the completed QuestionnaireResponse (authored now); returns its id. Every required question asked
    must be answered (AnswersMissing otherwise, nothing stored); the link is used from then on."""
    instrument = instrument_of(invitation)
    codes = saved_codes(invitation)
    missing = [q.link_id for q in questions(instrument, codes) if q.item.required and q.answer_code is None]
    if missing:
        raise AnswersMissing(missing)
    response_id = _write_response(session, ctx, invitation, status="completed", now=now)
    ctx.intent = AuditIntent("update", INVITATION_KIND, record_id=invitation.id, patient_id=invitation.patient_id)
    invitation.status, invitation.completed_at, invitation.ended_at = "completed", now, now
    invitation.updated_at, invitation.sealed_token = now, None
    session.add(invitation)
    cancel_pending_messages(session, [invitation.id], now)
    record_success(session, ctx, status_code=200, patient_ids=[invitation.patient_id])
    return response_id


def _answer(instrument: Instrument, link_id: str, code: str) -> dict[str, Any]:
    if code == SKIPPED:
        return {"link_id": link_id, "skipped": True}
    item = instrument.item(link_id)
    assert item is not None
    option = next(o for o in item.options if o.code == code)
    coding = Coding(system=option.system, code=option.code, display=option.display)
    return ItemAnswer(link_id=link_id, value_coding=coding).model_dump(mode="json", exclude_none=True)


def _write_response(
    session: Session, ctx: RequestContext, invitation: Invitation, *, status: Literal["in-progress", "completed"],
    now: datetime,
) -> str:  # fmt: skip
    instrument = instrument_of(invitation)
    patient = ResponseParty(reference=f"Patient/{invitation.patient_id}", type="Patient")
    answers = _item_answers(invitation)
    if invitation.response_id is not None:
        row = session.get(QuestionnaireResponse, invitation.response_id)
        assert row is not None and row.tenant_id == invitation.tenant_id
        changes = {
            "status": status,
            "authored_at": now,
            "answers": [a.model_dump(exclude_none=True) for a in answers],
        }
        store.update_record(session, ctx, QUESTIONNAIRE_RESPONSES, row.id, changes, f'W/"{row.version}"')
        return row.id
    payload = QuestionnaireResponseCreate(
        patient_id=invitation.patient_id,
        enrollment_id=invitation.enrollment_id,
        instrument=instrument.key,
        questionnaire=instrument.canonical,
        authored_at=now,
        author_kind="patient",
        status=status,
        answers=answers,
        author=patient,
        answered_by=patient,
        source=SourceIdentifier(system=SELF_REPORT_SOURCE, value=invitation.id),
    )
    written, _created = store.create_record(session, ctx, QUESTIONNAIRE_RESPONSES, payload)
    invitation.response_id = written.id
    session.add(invitation)
    return written.id


def still_open(invitation: Invitation, now: datetime) -> bool:
    return current_status(invitation, now) in OPEN_STATUSES
