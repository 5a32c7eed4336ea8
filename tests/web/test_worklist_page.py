"""The worklist page's forms without a browser: CSRF, refusals in words beside the task, audit (issue #21)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from service.records.audit import AuditEvent
from tests.builders import ApiDriver
from tests.web.conftest import Browser, at_risk_patient, unique

TASK_ID = re.compile(r'name="task_id" value="([^"]+)"')


def _urgent_task(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], new_tenant: Callable[[], str]
) -> tuple[Browser, str, str]:
    tenant = new_tenant()
    name = unique("Worklistpage")
    at_risk_patient(api_as(tenant), family_name=name)
    page = browser()
    page.sign_in(tenant, "coordinator")
    shown = page.get("/worklist?view=team")
    assert shown.status_code == 200 and name in shown.text
    found = TASK_ID.search(shown.text)
    assert found is not None
    return page, found.group(1), tenant


def test_a_form_without_its_csrf_token_changes_nothing(
    browser: Callable[..., Browser], api_as: Callable[..., ApiDriver], new_tenant: Callable[[], str]
) -> None:
    page, task_id, _ = _urgent_task(browser, api_as, new_tenant)
    body = {"task_id": task_id, "channel": "phone", "outcome": "reached", "view": "team"}
    assert page.post("/worklist/outreach", body, csrf="forged").status_code == 403
    assert "Phone — Reached" not in page.get("/worklist?view=team").text
    assert page.post("/worklist/outreach", body, csrf=page.csrf()).status_code == 303
    assert "Phone — Reached" in page.get("/worklist?view=team").text


def test_an_urgent_snooze_past_today_is_refused_beside_the_task_and_audited(
    browser: Callable[..., Browser],
    api_as: Callable[..., ApiDriver],
    new_tenant: Callable[[], str],
    web_engine: Engine,
) -> None:
    page, task_id, tenant = _urgent_task(browser, api_as, new_tenant)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    body = {"task_id": task_id, "until": tomorrow, "reason": "busy", "view": "team"}
    refused = page.post("/worklist/snooze", body, csrf=page.csrf())
    assert refused.status_code == 422
    assert "cannot be snoozed past today" in refused.text and 'role="alert"' in refused.text
    unknown = page.post("/worklist/outreach", {**body, "channel": "phone", "outcome": "busy"}, csrf=page.csrf())
    assert unknown.status_code == 422 and "outcome" in unknown.text
    with Session(web_engine) as session:
        failures = session.exec(
            select(AuditEvent.record_kind, AuditEvent.status_code).where(
                col(AuditEvent.tenant_id) == tenant, col(AuditEvent.outcome) == "failure"
            )
        ).all()
    assert sorted(failures) == [("outreach-attempts", 422), ("worklist-tasks", 422)]


def test_an_admin_has_no_worklist(browser: Callable[..., Browser], new_tenant: Callable[[], str]) -> None:
    page = browser()
    page.sign_in(new_tenant(), "admin")
    assert page.get("/worklist").status_code == 403
