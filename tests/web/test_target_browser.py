"""Issue #24, part 4, done when: in a real browser (Debian's headless Chromium), an admin registers a target
against a local sekmet-fhir (SMART Backend Services) from the sync page, tests the connection, sees the
capability decisions, backfills the hospital's history, and sees the rows delivered by a live `tandem sync worker`
(a subprocess on the same database)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from service.app import create_app
from service.auth.tokens import mint_dev_token
from service.outbox import OutboxMessage
from service.web import install_web
from tests.builders import ApiDriver, administration_body
from tests.conftest import make_settings
from tests.ehr_peer.sekmet_server import SekmetServer, sekmet_fixture
from tests.live_server import serve
from tests.reliability.process_fleet import TANDEM, service_env
from tests.web.conftest import enrolled_patient
from tests.web.test_browser import SCREENSHOTS, chromium  # noqa: F401 (the module's browser fixture)

pytestmark = pytest.mark.browser
sekmet_smart = sekmet_fixture(smart=True)
PATIENTS = 2
RECORDS = PATIENTS * 3  # each: the patient, an enrolment, a ketamine session
DELIVERY_WAIT_SECONDS = 180  # a bound on waiting for the worker, not a measurement


def test_an_admin_registers_tests_and_backfills_a_target_delivered_by_a_live_worker(
    chromium: Any,  # noqa: F811
    sekmet_smart: SekmetServer,
    database_url: str,
    new_tenant: Callable[[], str],
    tmp_path: Path,
) -> None:
    smart = sekmet_smart.smart_client
    assert smart is not None and sekmet_smart.token_url
    keys = {smart.kid: smart.private_key_pem.decode()}
    settings = make_settings(
        database_url, sync_allowed_hosts=["127.0.0.1"], sync_require_https=False, smart_private_keys=keys
    )
    app = create_app(settings)
    install_web(app)
    tenant = new_tenant()
    ehr = ApiDriver(
        TestClient(app), {"Authorization": f"Bearer {mint_dev_token(settings, tenant=tenant, role='ehr-system')}"}
    )
    for n in range(PATIENTS):  # the hospital's history, written before the EHR is registered
        patient_id = enrolled_patient(ehr, family_name=f"Sekmetson{n}")
        ehr.create("ketamine-administrations", administration_body(patient_id))
    token = mint_dev_token(settings, tenant=tenant, role="admin", subject="it-admin")
    worker: subprocess.Popen[bytes] | None = None
    with serve(app) as base_url:
        context = chromium.new_context(viewport={"width": 1280, "height": 1000}, base_url=base_url)
        page = context.new_page()
        try:
            page.goto("/sign-in")
            page.get_by_label("Bearer token from your hospital's identity provider").fill(token)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{base_url}/sync")

            page.get_by_role("link", name="Add an EHR target").click()
            page.wait_for_url("**/sync/targets/new")
            page.get_by_label("Name (required)").fill("sekmet (SMART)")
            page.get_by_label("FHIR base URL (required)").fill(sekmet_smart.base_url)
            page.get_by_label("Authentication").select_option("smart-backend")
            page.get_by_label("Client id").fill(smart.client_id)
            page.get_by_label("Token URL").fill(sekmet_smart.token_url)
            page.get_by_label("Our signing key id").fill(smart.kid)
            for kind in ("patients", "enrollments", "ketamine-administrations", "questionnaire-responses"):
                page.locator(f'input[name="push"][value="{kind}"]').check()
            page.get_by_label("Requests per second (at most 100)").fill("50")
            page.get_by_role("button", name="Add target").click()
            page.wait_for_url("**/sync/targets/*?saved=1")
            assert page.get_by_role("heading", name="sekmet (SMART)").is_visible()

            page.get_by_role("button", name="Test connection").click()
            page.wait_for_load_state()
            report = page.locator("#connection-report")
            assert page.get_by_role("heading", name="Connection test: it works").is_visible(), report.inner_text()
            steps = report.locator("ul.reasons").inner_text()
            assert "sekmet" in steps.lower() and "FHIR 4.0.1" in steps
            assert f"issued an access token to client '{smart.client_id}'" in steps
            decisions = {
                row.locator("th").inner_text(): row.locator("td").all_inner_texts()
                for row in report.locator("#capability-decisions tbody tr").all()
            }
            assert decisions["patients"][:3] == ["yes", "natural", "Patient"]
            assert decisions["ketamine administrations"][1] == "natural"
            # sekmet does not declare QuestionnaireResponse (tests/ehr_peer/README.md): its fallback, and why
            questionnaires = decisions["questionnaire responses"]
            assert questionnaires[1] in ("fallback", "not supported"), questionnaires
            assert "QuestionnaireResponse" in questionnaires[3]
            assert decisions["appointments"][0] == "no"  # shown, though not sent to this target

            page.get_by_role("button", name="Backfill").click()
            page.wait_for_url("**backfilled=*")
            notice = page.get_by_role("status").first.inner_text()
            assert notice.startswith(f"Backfill: {RECORDS} record(s) queued; 0 already queued"), notice
            assert page.locator("#target-progress").inner_text().startswith(f"{RECORDS} queued, 0 delivered")

            env = service_env(database_url) | {"TANDEM_SMART_PRIVATE_KEYS": json.dumps(keys)}
            log = (tmp_path / "worker.log").open("wb")
            worker = subprocess.Popen(
                [TANDEM, "sync", "worker", "--tenant", tenant, "--lease-seconds", "5"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            progress = ""
            deadline = time.monotonic() + DELIVERY_WAIT_SECONDS
            while time.monotonic() < deadline:
                page.reload()
                progress = page.locator("#target-progress").inner_text()
                if progress.startswith(f"0 queued, {RECORDS} delivered"):
                    break
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                time.sleep(0.5)
            assert progress.startswith(f"0 queued, {RECORDS} delivered"), (
                progress + "\n" + (tmp_path / "worker.log").read_text()[-3000:]
            )
            rows = page.locator("#target-messages tbody tr")
            assert rows.count() == RECORDS
            assert "Sekmetson" in rows.first.inner_text() and "sent" in rows.first.inner_text()
            if database_url.startswith("sqlite"):  # the page with the connection test and the delivered rows
                page.get_by_role("button", name="Test connection").click()
                page.wait_for_load_state()
                page.screenshot(path=str(SCREENSHOTS / "sync-target.png"), full_page=True)

            # A second backfill queues nothing new.
            page.get_by_role("button", name="Backfill").click()
            page.wait_for_url("**backfilled=*")
            assert page.get_by_role("status").first.inner_text().startswith("Backfill: 0 record(s) queued")
        finally:
            context.close()
            if worker is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(30)
    with Session(app.state.engine) as session:
        statuses = session.exec(select(OutboxMessage.status).where(col(OutboxMessage.tenant_id) == tenant)).all()
    assert sorted(statuses) == ["sent"] * RECORDS
    # The EHR holds the patients under our identifier.
    with sekmet_smart.client() as fhir:
        found = fhir.get("Patient", params={"family": "Sekmetson0"}).json()
    assert found.get("total", len(found.get("entry", []))) >= 1, found
