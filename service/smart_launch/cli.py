"""`tandem smart`: register a hospital's EHR as a SMART authorization server for the patient page, and list them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from service.db.engine import make_engine
from service.db.unit_of_work import unit_of_work
from service.errors import TandemError
from service.settings import get_settings
from service.smart_launch.registration import DEFAULT_SCOPE, RegistrationRequest, register_ehr, registrations_of

app = typer.Typer(help="SMART App Launch: the patient page launched from the hospital's EHR.", no_args_is_help=True)
console = Console(stderr=True)


@app.command("register")
def register(
    tenant_id: str,
    iss: Annotated[str, typer.Argument(help="The EHR's FHIR base URL, as it sends it in `iss`")],
    client_id: Annotated[str, typer.Option(help="The client id the EHR issued to Tandem")],
    redirect_uri: Annotated[
        str, typer.Option(help="Tandem's callback as registered there: https://HOST/smart/callback")
    ],
    role: Annotated[
        list[str],
        typer.Option(help="Practitioner=clinician, PractitionerRole=coordinator, scope:SCOPE=clinician (repeat)"),
    ],
    frame_origin: Annotated[
        list[str] | None, typer.Option(help="An origin the EHR shows Tandem's page inside (repeat)")
    ] = None,
    client_secret_env: Annotated[
        str | None, typer.Option(help="Confidential client: TANDEM_SMART_CLIENT_SECRET_<NAME> holding the secret")
    ] = None,
    scope: Annotated[str, typer.Option(help="The scopes Tandem asks for")] = DEFAULT_SCOPE,
    target: Annotated[str | None, typer.Option(help="The tenant's EHR sync target at this server (id or name)")] = None,
) -> None:
    """Register (or update) the EHR at ISS for TENANT: launches from it sign its users in to the patient page."""
    settings = get_settings()
    request = RegistrationRequest(
        tenant_id=tenant_id,
        iss=iss,
        client_id=client_id,
        redirect_uri=redirect_uri,
        roles=role,
        frame_origins=frame_origin or (),
        client_secret_env=client_secret_env,
        scope=scope,
        target=target,
    )
    with unit_of_work(make_engine(settings.database_url)) as session:
        from service.tenants import tenant_exists

        if not tenant_exists(session, tenant_id):
            console.print(f"[red]no tenant {tenant_id!r}; register it with `tandem tenant add`[/red]")
            raise typer.Exit(2)
        try:
            registration = register_ehr(session, settings, request)
        except TandemError as refused:
            console.print(f"[red]{refused}[/red]", highlight=False)
            raise typer.Exit(2) from None
        linked = f", patients found through target {registration.target_id}" if registration.target_id else ""
        console.print(
            f"{registration.iss} registered for {tenant_id} ({'confidential' if client_secret_env else 'public'} "
            f"client {registration.client_id}{linked}); launch URL: <tandem>/smart/launch",
            highlight=False,
        )


@app.command("list")
def list_registrations(tenant_id: str) -> None:
    """The EHRs registered for TENANT: iss, client id, frame origins and role rules."""
    with unit_of_work(make_engine(get_settings().database_url)) as session:
        for r in registrations_of(session, tenant_id):
            rules = ", ".join(f"{rule['when']}={rule['role']}" for rule in r.role_rules)
            frames = " ".join(r.frame_origins) or "none (never framed)"
            print(f"{r.iss}\tclient {r.client_id}\tframes: {frames}\troles: {rules}")
