"""`tandem sync …`: run delivery workers, pull from a target, replay dead letters."""

from __future__ import annotations

import multiprocessing
import signal
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from service.audit_trail import RequestContext
from service.auth.principal import Principal
from service.clock import now_utc
from service.db.engine import make_engine
from service.db.unit_of_work import unit_of_work
from service.errors import InvalidRequest
from service.observability import configure_logging
from service.records.sync_target import SyncTarget
from service.settings import get_settings
from service.sync import status as sync_status
from service.sync.backfill import backfill
from service.sync.export import bulk_export
from service.sync.heartbeat import live_worker_on
from service.sync.leases import DEFAULT_LEASE_SECONDS
from service.sync.processing import Processor, WorkerStats
from service.sync.pull import PULL_ORDER, KindSummary, PullSummary, pull
from service.sync.quarantine import list_quarantined, retry_quarantined
from service.sync.worker import default_worker_id, run_worker

app = typer.Typer(help="EHR sync: delivery workers, pulls, backfills, dead letters.", no_args_is_help=True)
console = Console(stderr=True)


def _summary(stats: WorkerStats) -> str:
    return (
        f"claimed {stats.claimed}, sent {stats.sent}, failed {stats.failed}, dead {stats.dead}, "
        f"not supported {stats.not_supported}, released {stats.released}, requests {stats.requests}"
    )


def _say(line: str) -> None:
    # Not markup: "[host:pid:id]" is the worker id, not a style; one line per message, also in a log file.
    console.print(line, markup=False, soft_wrap=True)


def _one_worker(once: bool, lease_seconds: int, batch: int, tenant: str | None, one_by_one: bool) -> None:
    settings = get_settings()
    configure_logging(settings)
    engine = make_engine(settings.database_url, pool_size=2)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker_id = default_worker_id()
    processor = Processor(engine, settings, worker_id, use_batch=False if one_by_one else None)
    stats = run_worker(
        engine,
        settings,
        worker_id=worker_id,
        stop_event=stop,
        once=once,
        batch=batch,
        lease_seconds=lease_seconds,
        tenant_id=tenant,
        processor=processor,
        progress=lambda s: _say(f"[{worker_id}] {_summary(s)}"),
    )
    _say(f"[{worker_id}] done: {_summary(stats)}")
    engine.dispose()


@app.command("worker")
def worker(
    processes: Annotated[int, typer.Option(min=1, max=64, help="Worker processes")] = 1,
    once: Annotated[bool, typer.Option(help="Stop when nothing is due")] = False,
    lease_seconds: Annotated[int, typer.Option(min=5, help="How long a claim holds before others may take it")] = (
        DEFAULT_LEASE_SECONDS
    ),
    batch: Annotated[int, typer.Option(min=1, max=500, help="Rows claimed at a time")] = 20,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's messages")] = None,
    one_by_one: Annotated[
        bool, typer.Option(help="Send each record on its own instead of batch Bundles (an EHR that mishandles them)")
    ] = False,
) -> None:
    """Deliver the outbox to the EHR targets (SIGTERM/Ctrl-C: finish the request in flight - one record, or one
    batch Bundle of the claimed records - and release the rest)."""
    if processes == 1:
        _one_worker(once, lease_seconds, batch, tenant, one_by_one)
        return
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_one_worker, args=(once, lease_seconds, batch, tenant, one_by_one))
        for _ in range(processes)
    ]
    started: list[multiprocessing.context.SpawnProcess] = []
    stopping = threading.Event()

    def stop_children(*_: object) -> None:
        # Each child finishes its current row and releases the rest of its claims on SIGTERM.
        stopping.set()
        for child in started:
            if child.is_alive():
                child.terminate()

    # Installed before the first child starts: a SIGTERM while they start must not kill the parent and leave the
    # children that did start running on their own.
    signal.signal(signal.SIGTERM, stop_children)
    for child in children:
        if stopping.is_set():
            break
        child.start()
        started.append(child)
    if stopping.is_set():
        stop_children()  # a SIGTERM during start() missed the child being started
    try:
        for child in started:
            child.join()
    except KeyboardInterrupt:
        stop_children()
        for child in started:
            child.join()
    # A child stopped while it was starting dies of the SIGTERM (its handler was not installed yet): it had claimed
    # nothing, so that is a clean stop too, not a failure.
    failed = [c for c in started if c.exitcode and not (stopping.is_set() and c.exitcode == -signal.SIGTERM)]
    if failed:
        raise typer.Exit(1)


@app.command("worker-ready")
def worker_ready(
    worker_id: Annotated[str | None, typer.Option(help="This worker only (default: any worker on this host)")] = None,
) -> None:
    """Exit 0 when a delivery worker on this host (a container's hostname) has beaten within
    TANDEM_SYNC_WORKER_DEAD_AFTER_SECONDS, 1 otherwise: the readiness check of a worker container."""
    settings = get_settings()
    engine = make_engine(settings.database_url, pool_size=1)
    host = socket.gethostname()
    try:
        with unit_of_work(engine) as session:
            found = live_worker_on(
                session,
                host,
                now=now_utc(),
                dead_after_seconds=settings.sync_worker_dead_after_seconds,
                worker_id=worker_id,
            )
            said = (
                f"live: {found.id}, last beat {found.last_beat_at.isoformat()}, {found.rows_claimed} rows claimed"
                if found
                else None
            )
    finally:
        engine.dispose()
    if said is None:
        console.print(
            f"no live delivery worker on {host} (no beat within {settings.sync_worker_dead_after_seconds} s)",
            markup=False,
        )
        raise typer.Exit(1)
    console.print(said, markup=False)


def _report(result: PullSummary) -> None:
    """What was fetched, taken, refused (quarantined) and not asked; exit 1 when anything was refused or failed."""
    console.print(
        f"{result.patients} patient(s) followed, {result.requests} request(s), {result.throttled} throttled",
        markup=False,
    )
    for error in result.errors:
        console.print(f"  error: {error}", markup=False, style="red")
    for name, summary in result.kinds.items():
        console.print(
            f"{name}: {summary.fetched} fetched, {summary.created} created, {summary.updated} updated, "
            f"{summary.already_present} already "
            f"present, {summary.skipped} skipped, {summary.refused} refused (quarantined)",
            markup=False,
        )
        for note in summary.notes:
            console.print(f"  not asked: {note}", markup=False)
        for line in [*summary.errors, *summary.refusals][:20]:
            console.print(f"  {line}", markup=False, style="yellow")
    if result.failed:
        console.print("refused or failed: see above; refused resources wait in the quarantine", markup=False)
        raise typer.Exit(1)


def _progress_bar() -> tuple[Progress, Callable[[str, KindSummary], None]]:
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[counts]}"), console=console)
    tasks: dict[str, TaskID] = {}

    def progress(name: str, summary: KindSummary) -> None:
        if name not in tasks:
            tasks[name] = bar.add_task(name, total=None, counts="")
        counts = f"{summary.fetched} fetched, {summary.created} created, {summary.refused} refused"
        bar.update(tasks[name], advance=1, counts=counts)

    return bar, progress


@app.command("pull")
def pull_command(
    target: str,
    kind: Annotated[list[str] | None, typer.Option(help=f"Of: {', '.join(PULL_ORDER)}")] = None,
) -> None:
    """Pull what TARGET recorded for the patients followed there since the last pull (exit 1 when anything was
    refused or failed)."""
    settings = get_settings()
    engine = make_engine(settings.database_url, pool_size=2)
    bar, progress = _progress_bar()
    with bar:
        result = pull(engine, settings, target, kind or None, progress=progress)
    _report(result)


@app.command("export")
def export_command(
    target: str,
    group: Annotated[str | None, typer.Option(help="The EHR's Group id (Epic exports by group only)")] = None,
) -> None:
    """Back-load a new programme from TARGET by Bulk Data $export (exit 1 when anything was refused or failed)."""
    settings = get_settings()
    engine = make_engine(settings.database_url, pool_size=2)
    bar, progress = _progress_bar()
    with bar:
        result = bulk_export(engine, settings, target, group=group, progress=progress)
    _report(result)


@app.command("quarantine")
def quarantine_command(
    target: str,
    retry: Annotated[bool, typer.Option(help="Take the refused items in again (after fixing the cause)")] = False,
) -> None:
    """List TARGET's quarantined resources (refused by Tandem when pulled), or retry them (exit 1 while any
    stays refused)."""
    settings = get_settings()
    engine = make_engine(settings.database_url, pool_size=1)
    with unit_of_work(engine) as session:
        row = session.get(SyncTarget, target)
        if row is None:
            console.print(f"no EHR sync target {target}", markup=False)
            raise typer.Exit(2)
        if retry:
            done = retry_quarantined(session, settings, row)
            console.print(f"{len(done.accepted)} accepted, {len(done.refused)} still refused", markup=False)
        items = list_quarantined(session, row.tenant_id, row.id)
    for item in items:
        console.print(f"{item.id}\t{item.resource_type}/{item.remote_id}\t{item.attempts}\t{item.reason}", markup=False)
    if items:
        raise typer.Exit(1)


@app.command("replay")
def replay_command(
    tenant: str,
    message: Annotated[int | None, typer.Option(help="One outbox message id (default: all dead letters)")] = None,
    target: Annotated[str | None, typer.Option(help="Only this target's dead letters")] = None,
    list_only: Annotated[bool, typer.Option("--list", help="List the dead letters, replay nothing")] = False,
) -> None:
    """Send dead letters of TENANT again (from the first attempt)."""
    engine = make_engine(get_settings().database_url, pool_size=1)
    with unit_of_work(engine) as session:
        if list_only:
            for entry in sync_status.list_dead_letters(session, tenant, target_id=target, limit=500):
                message_text = (entry.last_error or {}).get("message", "")
                console.print(
                    f"{entry.id}\t{entry.record_kind}/{entry.record_id}\t{entry.last_status_code}\t{message_text}"
                )
            return
        count = sync_status.replay(session, tenant, outbox_id=message, target_id=target)
    console.print(f"{count} dead letter(s) queued again")


@app.command("backfill")
def backfill_command(target: str) -> None:
    """Queue for TARGET every record of its tenant it takes and was not sent yet (a new EHR's history); running it
    again queues nothing new. The delivery workers send the rows."""
    settings = get_settings()
    engine = make_engine(settings.database_url, pool_size=1)
    with unit_of_work(engine) as session:
        row = session.get(SyncTarget, target)
    if row is None:
        console.print(f"no EHR sync target {target}", markup=False)
        raise typer.Exit(2)
    principal = Principal(
        subject="cli:sync-backfill", tenant_id=row.tenant_id, role="admin", scopes=None, client_id=None
    )
    ctx = RequestContext(principal=principal, request_id=str(uuid.uuid4()), settings=settings)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console)
    tasks: dict[str, TaskID] = {}

    def progress(kind: str, seen: int, total: int) -> None:
        if kind not in tasks:
            tasks[kind] = bar.add_task(kind, total=total or 1)
        bar.update(tasks[kind], completed=seen if total else 1)

    try:
        with bar, unit_of_work(engine) as session:
            summary = backfill(session, ctx, row.id, progress=progress)
    except InvalidRequest as error:
        console.print(f"nothing queued: {error.problems[0].message}", markup=False)
        raise typer.Exit(1) from None
    console.print(f"{row.name}: {summary.line()}", markup=False, soft_wrap=True)
