"""Issue #21, part 3: notes on a patient — a draft its author edits, frozen once signed, corrected by amendment,
audited, tenant-scoped, CSRF-protected on the page, and never in the logs. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.auth.principal import Role
from service.auth.tokens import mint_dev_token
from service.records.audit import AuditEvent
from service.records.patient_note import NOTE_MAX_LENGTH, PatientNote
from service.settings import Settings
from tests.builders import API, ApiDriver
from tests.web.conftest import Browser


class Notes:
    """The notes API of one patient, as one caller."""

    def __init__(self, client: TestClient, settings: Settings, tenant: str, patient_id: str,
                 role: Role = "coordinator", subject: str = "coordinator-ana") -> None:  # fmt: skip
        token = mint_dev_token(settings, tenant=tenant, role=role, subject=subject)
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}
        self.base = f"{API}/patients/{patient_id}/notes"

    def write(self, text: str, **extra: Any) -> httpx.Response:
        return self.client.post(self.base, json={"text": text, **extra}, headers=self.headers)

    def edit(self, note_id: str, text: str, if_match: str | None = None) -> httpx.Response:
        """A change to the version last read, as a client sends it (or to the version named)."""
        headers = {**self.headers, "If-Match": if_match or self._read_version(note_id)}
        return self.client.patch(f"{self.base}/{note_id}", json={"text": text}, headers=headers)

    def sign(self, note_id: str, if_match: str | None = None) -> httpx.Response:
        headers = {**self.headers, "If-Match": if_match or self._read_version(note_id)}
        return self.client.post(f"{self.base}/{note_id}/sign", headers=headers)

    def _read_version(self, note_id: str) -> str:
        read = self.read(note_id)
        return read.headers.get("ETag", 'W/"1"')  # a note the caller cannot read: its refusal is the point

    def read(self, note_id: str) -> httpx.Response:
        return self.client.get(f"{self.base}/{note_id}", headers=self.headers)

    def all(self) -> list[dict[str, Any]]:
        listed = self.client.get(self.base, headers=self.headers)
        assert listed.status_code == 200, listed.text
        notes: list[dict[str, Any]] = listed.json()["notes"]
        return notes


@pytest.fixture
def notes_of(web_app: FastAPI, web_settings: Settings, api_as: Callable[..., ApiDriver]) -> Callable[..., Notes]:
    client = TestClient(web_app)

    def notes(tenant: str, patient_id: str, role: Role = "coordinator", subject: str = "coordinator-ana") -> Notes:
        return Notes(client, web_settings, tenant, patient_id, role, subject)

    return notes


def _audit(engine: Engine, tenant: str, note_id: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(AuditEvent).where(col(AuditEvent.tenant_id) == tenant, col(AuditEvent.record_id) == note_id)
            )
        )


def test_a_draft_is_edited_by_its_author_then_signed_and_frozen(
    notes_of: Callable[..., Notes], api_as: Callable[..., ApiDriver], tenant: str, web_engine: Engine
) -> None:
    patient_id = api_as(tenant).patient()
    ana = notes_of(tenant, patient_id)
    written = ana.write("Called, no answer; left a voicemail")
    assert written.status_code == 201, written.text
    note = written.json()
    assert (note["status"], note["author"], note["signed_at"]) == ("draft", "coordinator-ana", None)
    edited = ana.edit(note["id"], "Called twice, no answer; left a voicemail")
    assert edited.status_code == 200 and edited.json()["text"] == "Called twice, no answer; left a voicemail"

    # Someone else's draft is not theirs to change or sign.
    ben = notes_of(tenant, patient_id, "clinician", "dr-ben")
    assert ben.edit(note["id"], "Overwritten").status_code == 403
    assert ben.sign(note["id"]).status_code == 403

    signed = ana.sign(note["id"])
    assert signed.status_code == 200 and signed.json()["status"] == "signed" and signed.json()["signed_at"]
    for refused in (ana.edit(note["id"], "Changed after signing"), ana.sign(note["id"])):
        assert refused.status_code == 409, refused.text
        assert "amendment" in refused.json()["detail"]
    assert ana.read(note["id"]).json()["text"] == "Called twice, no answer; left a voicemail"
    updates = sorted((e.action, e.outcome) for e in _audit(web_engine, tenant, note["id"]) if e.action == "update")
    assert updates == [
        ("update", "failure"), ("update", "failure"), ("update", "failure"), ("update", "failure"),
        ("update", "success"), ("update", "success"),
    ]  # fmt: skip


def test_a_draft_changes_only_from_the_version_read(
    notes_of: Callable[..., Notes], api_as: Callable[..., ApiDriver], tenant: str
) -> None:
    """Two tabs of one author: the second change names the version it read, which the first moved on; it is refused
    (412) and the draft keeps the first change. No If-Match is 428, a malformed one 422; nothing changes."""
    patient_id = api_as(tenant).patient()
    ana = notes_of(tenant, patient_id)
    written = ana.write("Called, no answer")
    assert written.status_code == 201 and written.headers["ETag"] == 'W/"1"', written.text
    note_id = written.json()["id"]
    first_tab = ana.edit(note_id, "Called twice, no answer", if_match='W/"1"')
    assert first_tab.status_code == 200 and first_tab.headers["ETag"] == 'W/"2"', first_tab.text
    for stale in (ana.edit(note_id, "Called once", if_match='W/"1"'), ana.sign(note_id, if_match='W/"1"')):
        assert stale.status_code == 412, stale.text
        assert 'W/"2"' in stale.json()["detail"]
    unversioned = ana.client.patch(f"{ana.base}/{note_id}", json={"text": "No version"}, headers=ana.headers)
    assert unversioned.status_code == 428, unversioned.text
    unsigned = ana.client.post(f"{ana.base}/{note_id}/sign", headers=ana.headers)
    assert unsigned.status_code == 428, unsigned.text
    garbled = ana.edit(note_id, "Garbled", if_match="two")
    assert garbled.status_code == 422 and "If-Match" in garbled.text, garbled.text
    now = ana.read(note_id).json()
    assert (now["text"], now["status"], now["version"]) == ("Called twice, no answer", "draft", 2)
    signed = ana.sign(note_id, if_match='W/"2"')
    assert signed.status_code == 200 and signed.json()["version"] == 3 and signed.headers["ETag"] == 'W/"3"'


def test_a_correction_is_an_amendment_and_the_original_stays_marked_amended(
    notes_of: Callable[..., Notes], api_as: Callable[..., ApiDriver], tenant: str
) -> None:
    patient_id = api_as(tenant).patient()
    ana = notes_of(tenant, patient_id)
    original = ana.write("Next infusion on Tuesday", sign=True).json()
    amendment = ana.write("Correction: the next infusion is on Thursday", amends=original["id"])
    assert amendment.status_code == 201 and amendment.json()["amends"] == original["id"]
    assert ana.read(original["id"]).json()["amended_by"] == []  # a draft amendment does not amend yet
    assert ana.sign(amendment.json()["id"]).status_code == 200
    by_id = {n["id"]: n for n in ana.all()}
    assert by_id[original["id"]]["text"] == "Next infusion on Tuesday"  # kept as it was signed
    assert by_id[original["id"]]["amended_by"] == [amendment.json()["id"]]
    assert ana.read(original["id"]).json()["amended_by"] == [amendment.json()["id"]]

    # A draft is not amended: its author edits it. Someone else's draft, or one's own: 409.
    ben = notes_of(tenant, patient_id, "clinician", "dr-ben")
    draft = ben.write("Plan: review dose").json()
    for who in (ana, ben):
        refused = who.write("Amending a draft", amends=draft["id"])
        assert refused.status_code == 409, refused.text
    assert ana.write("Amends nothing that exists", amends=str(uuid.uuid4())).status_code == 404


@pytest.mark.parametrize(
    "body",
    [{"text": ""}, {"text": "   \n "}, {"text": "x" * (NOTE_MAX_LENGTH + 1)}, {}, {"text": "ok", "author": "someone"}],
    ids=["empty", "blank", "too-long", "missing", "unknown-field"],
)
def test_bad_note_text_is_refused_and_nothing_is_stored(
    body: dict[str, Any],
    notes_of: Callable[..., Notes],
    api_as: Callable[..., ApiDriver],
    tenant: str,
    web_engine: Engine,
) -> None:
    patient_id = api_as(tenant).patient()
    ana = notes_of(tenant, patient_id)
    refused = ana.client.post(ana.base, json=body, headers=ana.headers)
    assert refused.status_code == 422, refused.text
    assert ana.all() == []
    longest = ana.write("y" * NOTE_MAX_LENGTH)
    assert longest.status_code == 201  # the limit itself is allowed
    assert ana.edit(longest.json()["id"], "z" * (NOTE_MAX_LENGTH + 1)).status_code == 422
    assert ana.edit(longest.json()["id"], "").status_code == 422


def test_notes_are_the_tenants_own_and_the_care_teams(
    notes_of: Callable[..., Notes], api_as: Callable[..., ApiDriver], new_tenant: Callable[[], str]
) -> None:
    tenant, other = new_tenant(), new_tenant()
    patient_id = api_as(tenant).patient()
    note = notes_of(tenant, patient_id).write("Reached the patient", sign=True).json()
    theirs = notes_of(other, patient_id)  # another hospital, naming this hospital's patient and note
    assert theirs.client.get(theirs.base, headers=theirs.headers).status_code == 404
    assert theirs.write("Not yours").status_code == 404
    assert theirs.read(note["id"]).status_code == 404
    assert theirs.edit(note["id"], "Not yours").status_code == 404
    assert theirs.sign(note["id"]).status_code == 404
    other_patient = api_as(other).patient()
    elsewhere = notes_of(other, other_patient)
    assert elsewhere.read(note["id"]).status_code == 404  # the note under their own patient: still missing
    for role in ("ehr-system", "admin"):
        outsider = notes_of(tenant, patient_id, role, f"{role}-1")
        assert outsider.write("Not the care team").status_code == 403
        assert outsider.client.get(outsider.base, headers=outsider.headers).status_code == 403


def _stored(engine: Engine, tenant: str) -> list[PatientNote]:
    with Session(engine) as session:
        return list(session.exec(select(PatientNote).where(col(PatientNote.tenant_id) == tenant)))


def test_notes_on_the_patient_page(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], tenant: str, web_engine: Engine
) -> None:
    patient_id = api_as(tenant).patient()
    page = f"/patients/{patient_id}"
    ana = browser()
    ana.sign_in(tenant, "coordinator", subject="coordinator-ana")
    assert "No notes yet." in ana.get(page).text
    csrf = ana.csrf()
    for token in (None, "forged"):  # no form token, a wrong one: refused, nothing stored
        assert ana.post(f"{page}/notes", {"text": "Called"}, csrf=token).status_code == 403
    assert _stored(web_engine, tenant) == []

    refused = ana.post(f"{page}/notes", {"text": "  "}, csrf=csrf)
    assert refused.status_code == 422 and "The note was not saved" in refused.text
    too_long = "w" * (NOTE_MAX_LENGTH + 1)
    refused = ana.post(f"{page}/notes", {"text": too_long}, csrf=csrf)
    assert refused.status_code == 422 and too_long in refused.text  # the text is kept in the form to shorten
    assert _stored(web_engine, tenant) == []

    saved = ana.post(f"{page}/notes", {"text": "Called, no answer", "sign": ""}, csrf=csrf)
    assert saved.status_code == 303
    note_id = saved.headers["location"].rsplit("#note-", 1)[1]
    assert "Called" not in saved.headers["location"]
    shown = ana.get(page).text
    assert f'action="{page}/notes/{note_id}"' in shown and "Your draft" in shown

    ben = browser()  # a clinician sees the draft, without a form to change it, and cannot post one
    ben.sign_in(tenant, "clinician", subject="dr-ben")
    theirs = ben.get(page).text
    assert "Called, no answer" in theirs and f'action="{page}/notes/{note_id}"' not in theirs
    assert ben.post(f"{page}/notes/{note_id}", {"text": "Mine now"}, csrf=ben.csrf()).status_code == 403

    assert 'name="version" value="1"' in shown
    # A second tab saved a change: the page opened before it is refused in words, and the draft keeps that change.
    saved = ana.post(f"{page}/notes/{note_id}", {"text": "Called, no answer (tab 2)", "version": "1"}, csrf=csrf)
    assert saved.status_code == 303
    stale = ana.post(f"{page}/notes/{note_id}", {"text": "From the old tab", "version": "1"}, csrf=csrf)
    assert stale.status_code == 412 and "changed after this page was opened" in stale.text
    assert [n.text for n in _stored(web_engine, tenant)] == ["Called, no answer (tab 2)"]

    signed = ana.post(
        f"{page}/notes/{note_id}", {"text": "Called twice, no answer", "sign": "1", "version": "2"}, csrf=csrf
    )
    assert signed.status_code == 303
    assert ana.post(f"{page}/notes/{note_id}", {"text": "Changed", "version": "4"}, csrf=csrf).status_code == 409
    amended = ben.post(
        f"{page}/notes", {"text": "Reached her at 16:00", "amends": note_id, "sign": "1"}, csrf=ben.csrf()
    )
    assert amended.status_code == 303
    shown = ana.get(page).text
    original = re.search(rf'<li id="note-{note_id}".*?</li>', shown, re.S)
    assert original is not None and "Amended" in original.group(0) and "Called twice, no answer" in original.group(0)
    assert "Reached her at 16:00" in shown
    assert [n.status for n in _stored(web_engine, tenant)] == ["signed", "signed"]


def test_a_notes_text_never_reaches_the_logs(
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    notes_of: Callable[..., Notes],
    browser: Callable[..., Browser],
    api_as: Callable[..., ApiDriver],
    tenant: str,
) -> None:
    secret = f"disclosed-{uuid.uuid4().hex}"
    patient_id = api_as(tenant).patient()
    with caplog.at_level(logging.DEBUG):
        ana = notes_of(tenant, patient_id)
        note = ana.write(f"Patient {secret} at home").json()
        ana.edit(note["id"], f"Patient {secret} at home, twice")
        ana.sign(note["id"])
        assert ana.edit(note["id"], f"{secret} after signing").status_code == 409
        assert ana.write(f"{secret}" * NOTE_MAX_LENGTH).status_code == 422
        ana.read(note["id"])
        b = browser()
        b.sign_in(tenant, "clinician", subject="dr-ben")
        b.get(f"/patients/{patient_id}")
        csrf = b.csrf()
        assert b.post(f"/patients/{patient_id}/notes", {"text": f"{secret} by the page"}, csrf=csrf).status_code == 303
        b.post(f"/patients/{patient_id}/notes", {"text": secret * NOTE_MAX_LENGTH}, csrf=csrf)
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert caplog.records, "nothing was logged: the capture would prove nothing"
    out, err = capfd.readouterr()
    assert secret not in logged and secret not in out and secret not in err
