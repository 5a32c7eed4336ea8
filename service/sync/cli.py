"""`tandem sync …`: run delivery workers, pull from a target, replay dead letters."""

from __future__ import annotations

import multiprocessing
import signal
import threading
from typing import Annotated

import typer
from rich.console import Console

from service.db.engine import make_engine
from service.db.unit_of_work import unit_of_work
from service.observability import configure_logging
from service.settings import get_settings
from service.sync import status as sync_status
from service.sync.leases import DEFAULT_LEASE_SECONDS
from service.sync.processing import Processor, WorkerStats
from service.sync.pull import KindSummary, pull
from service.sync.worker import default_worker_id, run_worker

app = typer.Typer(help="EHR sync: delivery workers, pulls, dead letters.", no_args_is_help=True)
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


@app.command("pull")
def pull_command(
    target: str,
    kind: Annotated[
        list[str] | None, typer.Option(help="patients, questionnaire-responses, observations, encounters")
    ] = None,
) -> None:
    """Pull what TARGET recorded since the last pull."""
    settings = get_settings()
    engine = make_engine(settings.database_url, pool_size=2)

    def progress(name: str, summary: KindSummary) -> None:
        console.print(f"{name}: page {summary.pages}, {summary.fetched} fetched, {summary.created} created")

    result = pull(engine, settings, target, kind or None, progress=progress)
    failed = False
    for name, summary in result.kinds.items():
        console.print(
            f"{name}: {summary.fetched} fetched, {summary.created} created, {summary.already_present} already "
            f"present, {summary.skipped} skipped"
        )
        for error in summary.errors[:20]:
            console.print(f"  [yellow]{error}[/yellow]")
        failed = failed or any(
            not e.startswith(("Patient/", "Observation/", "QuestionnaireResponse/", "Encounter/"))
            for e in summary.errors
        )
    if failed:
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
