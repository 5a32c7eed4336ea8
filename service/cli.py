"""The `tandem` command: database, tenants, demo data, development tokens, the OpenAPI export and the server."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, get_args

import typer
from rich.console import Console
from rich.progress import Progress, TaskID

from service.auth.principal import Role
from service.auth.tokens import mint_dev_token
from service.cds_hooks.cli import app as cds_app
from service.db import migrations
from service.db.engine import make_engine
from service.db.unit_of_work import unit_of_work
from service.errors import TandemError
from service.settings import PROJECT_ROOT, get_settings, software_version
from service.smart_launch.cli import app as smart_app
from service.sync.cli import app as sync_app
from service.sync.keys_cli import app as keys_app

app = typer.Typer(help="Tandem: combined ketamine/esketamine + CBT care service.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (alembic migrations).", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants: one per hospital or site.", no_args_is_help=True)
demo_app = typer.Typer(help="The synthetic demo tenant.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(demo_app, name="demo")
staff_app = typer.Typer(help="Who the signed-in users are in the care team.", no_args_is_help=True)
app.add_typer(staff_app, name="staff")
status_app = typer.Typer(help="Plan statuses.", no_args_is_help=True)
app.add_typer(status_app, name="status")
app.add_typer(sync_app, name="sync")
app.add_typer(keys_app, name="keys")
app.add_typer(cds_app, name="cds")
app.add_typer(smart_app, name="smart")
console = Console(stderr=True)

DEMO_TENANT = "demo"


def _print_version(asked: bool) -> None:
    if asked:
        sys.stdout.write(f"tandem {software_version()}\n")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """Tandem: combined ketamine/esketamine + CBT care service."""


OPENAPI_PATH = PROJECT_ROOT / "openapi" / "openapi.json"
FHIR_OPENAPI_PATH = PROJECT_ROOT / "openapi" / "fhir-openapi.json"


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the database (TANDEM_DATABASE_URL) to REVISION."""
    migrations.upgrade(get_settings().database_url, revision)
    console.print(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (e.g. base)."""
    migrations.downgrade(get_settings().database_url, revision)
    console.print(f"database at {revision}")


@tenant_app.command("add")
def tenant_add(
    tenant_id: str,
    name: Annotated[str, typer.Option(help="Display name")],
    time_zone: Annotated[str, typer.Option(help="The hospital's IANA zone, e.g. Europe/Oslo")] = "UTC",
) -> None:
    """Register a tenant; tokens name it in their `tenant` claim."""
    from service.tenants import register_tenant

    with unit_of_work(make_engine(get_settings().database_url)) as session:
        try:
            register_tenant(session, tenant_id=tenant_id, name=name, time_zone=time_zone)
        except TandemError as refused:
            console.print(f"[red]{refused}[/red]")
            raise typer.Exit(2) from None
    console.print(f"tenant {tenant_id} registered ({time_zone})")


@tenant_app.command("self-report")
def tenant_self_report(
    tenant_id: str,
    crisis_text: Annotated[
        str | None, typer.Option(help="What a patient whose answer needs help now is shown (default: US 988/911)")
    ] = None,
    staff_will_call: Annotated[
        bool | None,
        typer.Option(
            "--staff-will-call/--no-staff-will-call", help="Tell that patient the care team will contact them"
        ),
    ] = None,
    link_valid_days: Annotated[int | None, typer.Option(help="Days a link lasts after its due day (default 7)")] = None,
) -> None:
    """A hospital's self-report settings: the crisis words, whether staff will call, how long links last."""
    from service.clock import now_utc
    from service.self_report.invitations import set_hospital_settings

    with unit_of_work(make_engine(get_settings().database_url)) as session:
        try:
            now = set_hospital_settings(session, tenant_id, crisis_text=crisis_text, staff_will_call=staff_will_call,
                                        link_valid_days=link_valid_days, now=now_utc())  # fmt: skip
        except TandemError as refused:
            console.print(f"[red]{refused}[/red]")
            raise typer.Exit(2) from None
    said = "says staff will contact the patient" if now.staff_will_call else "does not say anyone will call"
    console.print(f"tenant {tenant_id}: links last {now.link_valid_days} days; the crisis panel {said}")


@tenant_app.command("set-zone")
def tenant_set_zone(tenant_id: str, time_zone: str) -> None:
    """Move a tenant to another IANA zone; its plan statuses are recomputed by the next sweep."""
    from service.tenants import set_tenant_zone

    with unit_of_work(make_engine(get_settings().database_url)) as session:
        try:
            set_tenant_zone(session, tenant_id, time_zone)
        except TandemError as refused:
            console.print(f"[red]{refused}[/red]")
            raise typer.Exit(2) from None
    console.print(
        f"tenant {tenant_id} now shows times in {time_zone}; run `tandem status sweep` (or wait for the in-process "
        "sweep) to word its plan statuses in the new zone"
    )


@staff_app.command("link")
def staff_link(tenant_id: str, subject: str, practitioner_id: str) -> None:
    """Link a user (their token's SUBJECT) to a practitioner of TENANT: the worklist's "my patients" and
    "escalated to me" are that practitioner's."""
    from service.worklist.staff import link_user_to_practitioner

    with unit_of_work(make_engine(get_settings().database_url)) as session:
        try:
            who = link_user_to_practitioner(
                session, tenant_id=tenant_id, subject=subject, practitioner_id=practitioner_id
            )
        except TandemError as refused:
            console.print(f"[red]{refused}[/red] (list practitioners: GET /api/v1/practitioners)")
            raise typer.Exit(2) from None
        name = ", ".join(n for n in (who.family_name, who.given_name) if n)
    console.print(f"{subject} at {tenant_id} is {name} ({who.role}): their worklist shows this practitioner's patients")


@demo_app.command("load")
def demo_load(
    tenant: str = DEMO_TENANT,
    patients: Annotated[int, typer.Option(min=1, max=100_000)] = 36,
    seed: int = 7,
    if_empty: Annotated[bool, typer.Option(help="Do nothing when the tenant already exists")] = False,
    programme: Annotated[
        bool,
        typer.Option(
            help="Load the synthetic programme for the outcomes page instead: patients enrolled 6-10 months ago, "
            "in which CBT-adherent patients relapse later (service/demo_programme.py)"
        ),
    ] = False,
) -> None:
    """Load synthetic patients at different points of a combined plan (idempotent: reloading adds nothing)."""
    from service.demo import generate_demo_tenant
    from service.demo_loader import load_demo_tenant
    from service.demo_programme import generate_programme
    from service.tenants import register_tenant, tenant_exists

    settings = get_settings()
    if not settings.development:
        console.print("[red]refusing to load demo data outside development (TANDEM_ENVIRONMENT)[/red]")
        raise typer.Exit(2)
    engine = make_engine(settings.database_url)
    with unit_of_work(engine) as session:
        if tenant_exists(session, tenant):
            if if_empty:
                console.print(f"demo tenant {tenant!r} already loaded")
                return
        else:
            register_tenant(session, tenant_id=tenant, name="Demo hospital (synthetic data)")
    demo = (
        generate_programme(seed=seed, patients=patients)
        if programme
        else generate_demo_tenant(seed=seed, patients=patients)
    )
    with Progress(console=console, transient=False) as progress:
        task = progress.add_task("loading demo patients", total=len(demo.patients))
        summary = load_demo_tenant(
            engine, tenant_id=tenant, demo=demo, settings=settings, advance=lambda: progress.advance(task)
        )
    console.print(
        f"demo tenant {tenant!r}: {len(demo.patients)} patients, {summary.created} records created, "
        f"{summary.already_present} already present"
    )


@status_app.command("sweep")
def status_sweep(
    every: Annotated[int, typer.Option(help="Repeat every N seconds (0: once)", min=0)] = 0,
) -> None:
    """Recompute the patients whose due dates passed since their status was stored; close expired
    break-the-glass grants (auditing their end); send the questionnaires the measurement schedule has due, then the
    patient messages that are due (invitations, reminders); queue the FHIR Subscription
    heartbeats that are due."""
    import time

    from service.sweep import run_sweep

    settings = get_settings()
    engine = make_engine(settings.database_url)
    while True:
        started = time.monotonic()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("recomputing plan statuses", total=None)

            def advance(done: int, due: int, task: TaskID = task) -> None:
                progress.update(task, completed=done, total=due)

            summary = run_sweep(engine, settings, canonical_base=settings.canonical_base, progress=advance)
        console.print(f"{summary.words()} ({time.monotonic() - started:.1f} s)")
        if not every:
            return
        time.sleep(every)


@app.command("dev-token")
def dev_token(
    tenant: str = DEMO_TENANT,
    role: Annotated[str, typer.Option(help="ehr-system, clinician, coordinator or admin")] = "coordinator",
    subject: str | None = None,
    hours: Annotated[int, typer.Option(min=1, max=72)] = 12,
) -> None:
    """Print a development bearer token (development mode only)."""
    settings = get_settings()
    if not settings.development:
        console.print("[red]dev tokens exist only in development (TANDEM_ENVIRONMENT=development)[/red]")
        raise typer.Exit(2)
    if role not in get_args(Role):
        console.print(f"[red]role must be one of {', '.join(get_args(Role))}[/red]")
        raise typer.Exit(2)
    token = mint_dev_token(settings, tenant=tenant, role=role, subject=subject, hours=hours)  # type: ignore[arg-type]
    sys.stdout.write(token + "\n")


@app.command("import")
def import_files(
    files: Annotated[
        list[Path],
        typer.Argument(help="FHIR Bundles (.json: batch, transaction, collection, searchset) or NDJSON", exists=True),
    ],
    tenant: Annotated[str, typer.Option(help="The tenant the records belong to")],
    source: Annotated[
        str | None,
        typer.Option(
            help="Whose ids the files use: a sync target (id, name or base URL) or the EHR's FHIR base URL. "
            "References then resolve to what Tandem keeps from that sender, and records are keyed as its pull keys "
            "them. Without it, references name this run's resources by their ids in the files, or Tandem's own ids."
        ),
    ] = None,
) -> None:
    """Load FHIR Bundles or NDJSON through the same path as the API; refused lines never stop the rest; exits 1
    when anything was refused."""
    from service.fhir.bulk_import import ImportRun, count_units, finish_import, import_file, sender_namespace
    from service.tenants import tenant_exists

    settings = get_settings()
    engine = make_engine(settings.database_url)
    run = ImportRun(tenant_id=tenant)
    with unit_of_work(engine) as session:
        if not tenant_exists(session, tenant):
            console.print(f"[red]no tenant {tenant!r}; register it with `tandem tenant add {tenant} --name ...`[/red]")
            raise typer.Exit(2)
        if source is not None:
            try:
                run.sender_namespace, run.origin_target = sender_namespace(session, tenant, source)
            except TandemError as refused:
                console.print(f"[red]{refused}[/red]")
                raise typer.Exit(2) from None
    with Progress(console=console) as progress:
        task = progress.add_task("importing", total=sum(count_units(f) for f in files))
        for path in files:
            import_file(engine, settings, run=run, path=path, advance=lambda: progress.advance(task))
        finish_import(engine, settings, run=run)
    summary = run.summary
    console.print(
        f"accepted {summary.accepted} ({summary.created} created, {summary.already_present} already present), "
        f"refused {len(summary.refused)}"
    )
    for where, why in summary.refused:
        console.print(f"  refused {where}: {why}", highlight=False, markup=False)
    for where, elements in summary.not_used:
        console.print(f"  not used in {where}: {elements}", highlight=False, markup=False)
    if summary.refused:
        raise typer.Exit(1)


@app.command("openapi")
def openapi(
    output: Annotated[Path, typer.Option(help="Where the JSON API's document goes")] = OPENAPI_PATH,
    fhir_output: Annotated[
        Path, typer.Option(help="Where the FHIR facade's document (from its CapabilityStatement) goes")
    ] = FHIR_OPENAPI_PATH,
    check: Annotated[bool, typer.Option(help="Fail if a committed export differs from the app's")] = False,
) -> None:
    """Export the OpenAPI documents (the JSON API's and the FHIR facade's), or check that the exports are
    current."""
    from service.openapi_export import fhir_openapi_document, openapi_document

    stale = []
    for path, spec in ((output, openapi_document()), (fhir_output, fhir_openapi_document())):
        document = json.dumps(spec, indent=2, sort_keys=True) + "\n"
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(document, encoding="utf-8")
            console.print(f"wrote {path}")
        elif not path.exists() or path.read_text(encoding="utf-8") != document:
            console.print(f"[red]{path} is out of date; run `tandem openapi` and commit it[/red]")
            stale.append(path)
        else:
            console.print(f"{path} is current")
    if stale:
        raise typer.Exit(1)


@app.command("serve")
def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the API with uvicorn."""
    import uvicorn

    # No access log: query strings can hold MRNs, and patient data never goes into logs.
    uvicorn.run("service.main:app", host=host, port=port, proxy_headers=True, log_level="info", access_log=False)


if __name__ == "__main__":
    app()
