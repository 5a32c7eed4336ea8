"""`tandem cds …`: register the EHRs that call Tandem's CDS Hooks service, list and remove them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from service.cds_hooks.discovery import SERVICES
from service.cds_hooks.registration import cds_clients, register_cds_client, unregister_cds_client
from service.db.engine import make_engine
from service.db.unit_of_work import unit_of_work
from service.errors import TandemError
from service.settings import get_settings

app = typer.Typer(help="CDS Hooks: the EHRs allowed to call Tandem's CDS services.", no_args_is_help=True)
console = Console(stderr=True)


@app.command("register")
def register(
    tenant_id: str,
    issuer: Annotated[str, typer.Argument(help="The EHR's JWT `iss`, exactly as it signs it")],
    jwks_url: Annotated[str | None, typer.Option(help="The EHR's JWK Set URL (fetched, cached)")] = None,
    jwks_file: Annotated[
        Path | None, typer.Option(help="The EHR's JWK Set as a JSON file (public keys), instead of a URL", exists=True)
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="The EHR's sync target id: its patient ids and its fhirServer")
    ] = None,
) -> None:
    """Let the EHR ISSUER call the CDS services for TENANT; running it again changes the registration."""
    settings = get_settings()
    try:
        jwks = json.loads(jwks_file.read_text()) if jwks_file is not None else None
    except (OSError, ValueError) as error:
        console.print(f"[red]--jwks-file: not readable JSON ({error})[/red]")
        raise typer.Exit(2) from None
    with unit_of_work(make_engine(settings.database_url)) as session:
        try:
            register_cds_client(
                session, settings, tenant_id=tenant_id, issuer=issuer, jwks_url=jwks_url,
                jwks=jwks if isinstance(jwks, dict) else ({} if jwks is not None else None), sync_target_id=target,
            )  # fmt: skip
        except TandemError as refused:
            console.print(f"[red]{refused}[/red]")
            raise typer.Exit(2) from None
    base = f"{settings.public_base_url.rstrip('/')}/cds-services"
    console.print(f"{issuer} may call the CDS services of {tenant_id}: discovery {base}")
    for service in SERVICES.values():
        console.print(f"  {service.hook}: {base}/{service.id} (the JWT's aud)")


@app.command("list")
def list_clients(tenant_id: str) -> None:
    """The EHRs registered for TENANT."""
    with unit_of_work(make_engine(get_settings().database_url)) as session:
        for client in cds_clients(session, tenant_id):
            keys = client.jwks_url or "inline JWK Set"
            typer.echo(f"{client.issuer}\t{keys}\ttarget={client.sync_target_id or '-'}")


@app.command("remove")
def remove(tenant_id: str, issuer: str) -> None:
    """Stop accepting the EHR ISSUER's calls for TENANT."""
    with unit_of_work(make_engine(get_settings().database_url)) as session:
        try:
            unregister_cds_client(session, tenant_id=tenant_id, issuer=issuer)
        except TandemError as refused:
            console.print(f"[red]{refused}[/red]")
            raise typer.Exit(2) from None
    console.print(f"{issuer} may no longer call the CDS services of {tenant_id}")
