"""Issue #21, part 7: axe-core in Chromium finds no serious or critical violation on the coordinator pages, at a
desktop width (1440 px) and a phone's (390 px); on the phone the urgent flags come first and rows are compact.

The pages checked are listed once, in PAGES: a new page is one line there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from service.auth.principal import Role
from service.auth.tokens import mint_dev_token
from service.caseload.tables import PlanStatusRow
from service.demo import generate_demo_tenant
from service.demo_loader import load_demo_tenant
from service.records.ketamine import KetamineAdministration
from service.settings import Settings
from tests.builders import API, ApiDriver
from tests.live_server import serve
from tests.web.axe import blocking_violations, describe
from tests.web.chromium import chromium_browser
from tests.web.test_sync_page import _setup as sync_page_with_dead_letters

pytestmark = pytest.mark.browser
WIDTHS = {"desktop": 1440, "phone": 390}


@dataclass(frozen=True)
class Checked:
    name: str
    role: Role
    path: str  # "{patient}" is the at-risk demo patient's id; "{rems_form}" the REMS form of a demo esketamine session


PAGES = [
    Checked("caseload", "coordinator", "/"),
    Checked("patient page", "clinician", "/patients/{patient}"),
    Checked("sync page", "admin", "/sync"),
    Checked("worklist", "coordinator", "/worklist"),
    # With the demo's few patients most cells read "< 11"; the curves drawn: tests/outcomes/test_outcomes_browser.py
    Checked("outcomes", "clinician", "/outcomes?period_start=2020-01-01"),
    Checked("REMS monitoring form", "clinician", "{rems_form}"),
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with chromium_browser() as browser:
        yield browser


def _at_risk_patient(app: FastAPI, tenant: str) -> str:
    with Session(app.state.engine) as session:
        row = session.exec(
            select(PlanStatusRow)
            .where(col(PlanStatusRow.tenant_id) == tenant, col(PlanStatusRow.status) == "at_risk")
            .order_by(col(PlanStatusRow.patient_id))
        ).first()
        assert row is not None, "the demo tenant has no at-risk patient"
        return row.patient_id


def _rems_form(app: FastAPI, tenant: str) -> str:
    """The REMS form page of the demo's latest esketamine session (its submission form still shown)."""
    with Session(app.state.engine) as session:
        row = session.exec(
            select(KetamineAdministration)
            .where(col(KetamineAdministration.tenant_id) == tenant, col(KetamineAdministration.drug) == "esketamine")
            .order_by(col(KetamineAdministration.started_at).desc())
        ).first()
        assert row is not None, "the demo tenant has no esketamine session"
        return f"/patients/{row.patient_id}/sessions/{row.id}/rems-form"


def _signed_in_page(chromium: Any, base_url: str, token: str, width: int) -> Any:
    # axe is injected as an inline script, which the pages' Content-Security-Policy rightly forbids.
    context = chromium.new_context(viewport={"width": width, "height": 900}, base_url=base_url, bypass_csp=True)
    page = context.new_page()
    page.goto("/sign-in")
    page.get_by_label("Bearer token from your hospital's identity provider").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return page


@pytest.fixture
def demo_tenant(web_app: FastAPI, web_settings: Settings, new_tenant: Callable[[], str],
                api_as: Callable[..., ApiDriver]) -> str:  # fmt: skip
    tenant = new_tenant()
    demo = generate_demo_tenant(seed=7, patients=24)
    load_demo_tenant(web_app.state.engine, tenant_id=tenant, demo=demo, settings=web_settings)
    sync_page_with_dead_letters(api_as, tenant, web_app.state.engine)  # a target, errors and dead letters to show
    return tenant


def test_no_serious_or_critical_violation_on_any_page_at_desktop_and_phone_widths(
    chromium: Any, web_app: FastAPI, web_settings: Settings, demo_tenant: str
) -> None:
    patient = _at_risk_patient(web_app, demo_tenant)
    rems_form = _rems_form(web_app, demo_tenant)
    # Notes to show: a signed one (with its amend form), its amendment, and the clinician's own draft (its edit form).
    notes = TestClient(web_app)
    token = mint_dev_token(web_settings, tenant=demo_tenant, role="clinician", subject="demo-clinician")
    clinician = {"Authorization": f"Bearer {token}"}
    base = f"{API}/patients/{patient}/notes"
    signed = notes.post(base, json={"text": "Called; reached the patient", "sign": True}, headers=clinician).json()
    for body in (
        {"text": "Correction: reached her mother", "amends": signed["id"], "sign": True},
        {"text": "Plan: recheck BP"},
    ):
        assert notes.post(base, json=body, headers=clinician).status_code == 201
    # Questionnaires sent to the patient, so the page lists them (issue #22).
    for instrument in ("phq-9", "gad-7"):
        sent = notes.post(f"{API}/patients/{patient}/invitations", json={"instrument": instrument}, headers=clinician)
        assert sent.status_code == 201, sent.text
    found: list[str] = []
    with serve(web_app) as base_url:
        for checked in PAGES:
            token = mint_dev_token(web_settings, tenant=demo_tenant, role=checked.role, subject=f"demo-{checked.role}")
            for width_name, width in WIDTHS.items():
                page = _signed_in_page(chromium, base_url, token, width)
                response = page.goto(checked.path.format(patient=patient, rems_form=rems_form))
                assert response is not None and response.status == 200, (checked, response and response.status)
                violations = blocking_violations(page)
                if violations:
                    found.append(f"{checked.name} at {width_name} ({width} px):\n{describe(violations)}")
                page.context.close()
    assert not found, "\n\n".join(found)


def test_on_a_phone_the_flags_come_first_and_rows_are_compact(
    chromium: Any, web_app: FastAPI, web_settings: Settings, demo_tenant: str
) -> None:
    patient = _at_risk_patient(web_app, demo_tenant)
    token = mint_dev_token(web_settings, tenant=demo_tenant, role="coordinator", subject="demo-coordinator")
    with serve(web_app) as base_url:
        page = _signed_in_page(chromium, base_url, token, WIDTHS["phone"])
        page.goto("/?status=at_risk")
        row = page.locator("table.registry tbody tr").first
        top = {
            cell: row.locator(f"[data-label='{cell}']").bounding_box()
            for cell in ("Status", "Patient", "Open flags", "Phase")
        }
        assert all(box is not None for box in top.values()), top
        # The status, the patient and the open flags before the rest of the row.
        assert top["Open flags"]["y"] < top["Phase"]["y"]
        assert top["Patient"]["y"] < top["Open flags"]["y"]
        # Compact: a card for an at-risk patient fits in half the phone's screen height.
        card = row.bounding_box()
        assert card is not None and card["height"] < 900 / 2, card

        page.goto(f"/patients/{patient}")
        flags = page.locator("[id^=flags-heading]").first.bounding_box()
        facts = page.locator("[id^=enrollment-] > .facts").first.bounding_box()
        assert flags is not None and facts is not None
        assert flags["y"] < facts["y"], "on a phone the open urgent flags come before the plan's facts"
        page.context.close()

        wide = _signed_in_page(chromium, base_url, token, WIDTHS["desktop"])
        wide.goto(f"/patients/{patient}")
        flags = wide.locator("[id^=flags-heading]").first.bounding_box()
        facts = wide.locator("[id^=enrollment-] > .facts").first.bounding_box()
        assert flags is not None and facts is not None and facts["y"] < flags["y"]  # the desktop order is unchanged
        wide.context.close()
