"""The launch and the callback (SMART App Launch 2.x, app-launch: EHR launch and standalone launch).

Launch: the `iss` must be registered (anything else is refused before any request leaves Tandem); its SMART
configuration is read; a state and a PKCE verifier are stored (single use, LAUNCH_MINUTES) and the browser is sent
to the EHR's authorize endpoint. Callback: the state must be the one this browser started (its cookie) and unused;
it is spent before anything else, so a failed exchange cannot be replayed. The code is exchanged with the verifier;
the id_token names the EHR user (fhirUser), the rules give the role, the launch patient is found in Tandem.

No transaction is held across the EHR's answers: each step's reads and writes are a unit of work of their own
(like a sync worker's claim), the spending of the state committed first. Audit rows (record kind
`smart-launches`, the launch's id) name the EHR user as the actor, refusals after the EHR said who it was too.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from os import environ
from urllib.parse import urlencode

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from service.auth.principal import Principal, Role
from service.clock import now_utc
from service.db.unit_of_work import unit_of_work
from service.records.audit import AuditEvent
from service.settings import Settings
from service.smart_launch import patients
from service.smart_launch.discovery import discover
from service.smart_launch.ehr_http import post_form
from service.smart_launch.identity import fhir_user_of
from service.smart_launch.pkce import code_challenge, new_code_verifier, new_state, state_hash
from service.smart_launch.refusals import LaunchForbidden, LaunchPatientUnknown, LaunchRefused
from service.smart_launch.registration import registration_for_iss
from service.smart_launch.roles import role_for
from service.smart_launch.tables import SmartLaunch, SmartRegistration

LAUNCH_MINUTES = 10
MAX_PARAMETER = 4096
LAUNCH_KIND = "smart-launches"


@dataclass(frozen=True)
class LaunchStart:
    authorize_url: str
    state: str
    expires_at: datetime


@dataclass(frozen=True)
class SignedInLaunch:
    principal: Principal
    patient_id: str
    launch_id: str
    frame_origins: tuple[str, ...]
    not_after: datetime | None


def start_launch(engine: Engine, settings: Settings, *, iss: str | None, launch: str | None) -> LaunchStart:
    if not iss or len(iss) > 1024:
        raise LaunchRefused("The EHR must send `iss`, its FHIR base URL, to launch Tandem.")
    if launch is not None and not 0 < len(launch) <= MAX_PARAMETER:
        raise LaunchRefused("The EHR's `launch` parameter is empty or too long.")
    with unit_of_work(engine) as session:
        registration = registration_for_iss(session, iss)
    if registration is None:
        raise LaunchRefused(
            "This EHR (iss) is not registered with Tandem, so Tandem will not contact it: an operator registers it "
            "with `tandem smart register`."
        )
    with framed_by(registration):
        config = discover(registration.iss, settings)
    state, verifier, now = new_state(), new_code_verifier(), now_utc()
    expires_at = now + timedelta(minutes=LAUNCH_MINUTES)
    with unit_of_work(engine) as session:
        session.add(
            SmartLaunch(
                tenant_id=registration.tenant_id,
                registration_id=registration.id,
                state_hash=state_hash(state),
                code_verifier=verifier,
                launch=launch,
                token_endpoint=config.token_endpoint,
                issuer=config.issuer,
                jwks_uri=config.jwks_uri,
                created_at=now,
                expires_at=expires_at,
            )
        )
    query = {
        "response_type": "code",
        "client_id": registration.client_id,
        "redirect_uri": registration.redirect_uri,
        "scope": _scope(registration.scope, ehr_launch=launch is not None),
        "state": state,
        "aud": registration.iss,
        "code_challenge": code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    if launch is not None:
        query["launch"] = launch
    return LaunchStart(f"{config.authorization_endpoint}?{urlencode(query)}", state, expires_at)


def finish_launch(
    engine: Engine,
    settings: Settings,
    *,
    state: str | None,
    code: str | None,
    error: str | None,
    browser_state: str | None,
    request_id: str,
) -> SignedInLaunch:
    if not state or len(state) > MAX_PARAMETER:
        raise LaunchRefused("The EHR's answer carries no state: start the launch from the EHR again.")
    if not browser_state or not hmac.compare_digest(browser_state.encode(), state.encode()):
        raise LaunchRefused("This answer does not belong to a launch started in this browser: launch again.")
    launch, registration = _spend(engine, state)
    with framed_by(registration):
        return _complete(engine, settings, launch, registration, code=code, error=error, request_id=request_id)


@contextmanager
def framed_by(registration: SmartRegistration) -> Iterator[None]:
    """A refusal once the EHR is known is shown where the launch runs: inside that EHR's frame (its origins)."""
    try:
        yield
    except LaunchRefused as refused:
        refused.frame_origins = tuple(registration.frame_origins)
        raise


def _complete(
    engine: Engine,
    settings: Settings,
    launch: SmartLaunch,
    registration: SmartRegistration,
    *,
    code: str | None,
    error: str | None,
    request_id: str,
) -> SignedInLaunch:
    if error or not code or len(code) > MAX_PARAMETER:
        _finish(engine, launch, outcome="refused-by-ehr")
        raise LaunchRefused(f"The EHR did not authorise the launch ({(error or 'no code')[:64]}).")
    grant = _exchange(settings, launch, registration, code)
    fhir_user = fhir_user_of(
        grant.get("id_token"),
        client_id=registration.client_id,
        issuer=launch.issuer,
        jwks_uri=launch.jwks_uri,
        iss=registration.iss,
        settings=settings,
    )
    scopes = str(grant.get("scope") or "").split()
    role = role_for(registration.role_rules, fhir_user, scopes)
    if role is None:
        _finish(engine, launch, outcome="no-role", fhir_user=fhir_user, request_id=request_id, status=403)
        raise LaunchForbidden(
            f"Tandem gives no role to this EHR user ({fhir_user.rsplit('/', 2)[-2]}): the hospital's rules for "
            "this EHR (`tandem smart register --role`) name none for them."
        )
    patient_id = _tandem_patient(engine, settings, registration, grant)
    if patient_id is None:
        _finish(engine, launch, outcome="unknown-patient", fhir_user=fhir_user, role=role, request_id=request_id)
        raise LaunchPatientUnknown(
            "The EHR's patient is not in Tandem's programme at this hospital (no linked record, no matching MRN)."
        )
    _finish(
        engine, launch, outcome="signed-in", fhir_user=fhir_user, role=role, request_id=request_id, patient=patient_id
    )
    expires_in = grant.get("expires_in")
    return SignedInLaunch(
        principal=Principal(subject=fhir_user, tenant_id=registration.tenant_id, role=role, scopes=None),
        patient_id=patient_id,
        launch_id=launch.id,
        frame_origins=tuple(registration.frame_origins),
        not_after=now_utc() + timedelta(seconds=expires_in) if isinstance(expires_in, int) and expires_in > 0 else None,
    )


def _scope(registered: str, *, ehr_launch: bool) -> str:
    """An EHR launch asks `launch`; a standalone one `launch/patient` (the EHR's user picks the patient)."""
    scopes = [s for s in registered.split() if s not in ("launch", "launch/patient")]
    return " ".join(["launch" if ehr_launch else "launch/patient", *scopes])


def _spend(engine: Engine, state: str) -> tuple[SmartLaunch, SmartRegistration]:
    """Use the state once: only the first callback with it finds it, and only within its minutes."""
    now = now_utc()
    with unit_of_work(engine) as session:
        spent = session.execute(
            update(SmartLaunch)
            .where(
                col(SmartLaunch.state_hash) == state_hash(state),
                col(SmartLaunch.used_at).is_(None),
                col(SmartLaunch.expires_at) > now,
            )
            .values(used_at=now)
        )
        launch = _launch_by_state(session, state)
        if spent.rowcount != 1 or launch is None:  # type: ignore[attr-defined]
            raise LaunchRefused("This launch is unknown, was already used or has expired: launch again from the EHR.")
        registration = session.get(SmartRegistration, launch.registration_id)
        if registration is None or registration.tenant_id != launch.tenant_id:
            raise LaunchRefused("This EHR's registration was removed during the launch: launch again.")
    return launch, registration


def _launch_by_state(session: Session, state: str) -> SmartLaunch | None:
    return session.exec(select(SmartLaunch).where(col(SmartLaunch.state_hash) == state_hash(state))).first()


def _exchange(settings: Settings, launch: SmartLaunch, registration: SmartRegistration, code: str) -> dict[str, object]:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": registration.redirect_uri,
        "code_verifier": launch.code_verifier,
    }
    auth = None
    if registration.client_secret_env is None:
        data["client_id"] = registration.client_id  # a public client names itself; PKCE proves the rest
    else:
        secret = environ.get(registration.client_secret_env)
        if not secret:
            raise LaunchRefused(f"{registration.client_secret_env} is not set on this server: tell the operator.")
        auth = (registration.client_id, secret)  # client-confidential-symmetric: HTTP Basic
    status, body = post_form(launch.token_endpoint, settings, "token endpoint", data, auth)
    if status != 200:
        what = str(body.get("error") or f"HTTP {status}")[:64]
        raise LaunchRefused(f"The EHR refused to exchange the authorization code ({what}): launch again.")
    if str(body.get("token_type", "")).lower() != "bearer" or not isinstance(body.get("access_token"), str):
        raise LaunchRefused("The EHR's token answer has no bearer access_token.")
    if not isinstance(body.get("patient"), str) or not body["patient"]:
        raise LaunchRefused("The EHR's token answer names no patient: launch Tandem from a patient's chart.")
    return body


def _tandem_patient(
    engine: Engine, settings: Settings, registration: SmartRegistration, grant: dict[str, object]
) -> str | None:
    ehr_patient = str(grant["patient"])
    with unit_of_work(engine) as session:
        found = patients.patient_by_ehr_id(session, registration, ehr_patient)
        if found is not None:
            return found.id
    identifiers = patients.ehr_identifiers(registration, ehr_patient, str(grant["access_token"]), settings)
    if not identifiers:
        return None
    with unit_of_work(engine) as session:
        found = patients.patient_by_identifiers(session, registration.tenant_id, identifiers)
        return found.id if found is not None else None


def _finish(
    engine: Engine,
    launch: SmartLaunch,
    *,
    outcome: str,
    fhir_user: str | None = None,
    role: Role | None = None,
    request_id: str | None = None,
    patient: str | None = None,
    status: int | None = None,
) -> None:
    """Record what the launch came to; once the EHR said who the user is, an audit row names them."""
    with unit_of_work(engine) as session:
        row = session.get(SmartLaunch, launch.id)
        if row is not None:
            row.outcome, row.fhir_user, row.patient_id = outcome, fhir_user, patient
            session.add(row)
        if fhir_user is None or request_id is None:
            return
        code = 303 if patient is not None else (status or 404)
        session.add(
            AuditEvent(
                tenant_id=launch.tenant_id,
                actor=fhir_user,
                actor_role=role or "none",
                action="create",
                record_kind=LAUNCH_KIND,
                record_id=launch.id,
                patient_id=patient,
                outcome="success" if code < 400 else "failure",
                status_code=code,
                request_id=request_id[:64],
            )
        )
