"""Engines. Sessions and their transactions are the unit of work's (service/db/unit_of_work.py).

SQLite is the embedded default for one process. pysqlite's own transaction handling defers BEGIN and breaks
SAVEPOINTs, so we take control of BEGIN (SQLAlchemy's documented recipe) and use BEGIN IMMEDIATE: a writer takes
the write lock up front instead of failing on a lock upgrade under concurrent requests.

The engine and pool listeners below are connection plumbing, not behaviour: they set pragmas, emit BEGIN and
queue this process's writers on one lock. None of them looks at a statement or its parameters, and none decides
what the service does; which work runs, and when it commits, is decided by the unit of work's explicit calls.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
_HOLDS_WRITER_LOCK = "tandem_holds_writer_lock"


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        # psycopg 3 is the driver we ship; a bare postgresql:// URL would ask for psycopg2.
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    # hide_parameters: a database error's message must never carry the row's values into a log.
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, hide_parameters=True)


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        hide_parameters=True,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    # This process's writers queue on a lock of ours before BEGIN IMMEDIATE. SQLite's busy handler makes a
    # waiting writer sleep and poll (up to 100 ms a nap), so under 16 concurrent creates some requests lost the
    # race again and again: p95 1.9 s against a p50 of 52 ms (bench/notes.md, change 11). A lock wakes the next
    # waiter when the writer finishes. Other processes still meet SQLite's own lock. Any thread may release (a
    # request's session can begin and commit on different threadpool threads); the timeout keeps a leaked lock
    # from stopping the process, and the pool events below release what a connection still holds.
    writer = threading.Lock()

    def _release(info: dict[str, Any]) -> None:
        if info.pop(_HOLDS_WRITER_LOCK, False):
            writer.release()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        held = writer.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        if not held:
            logger.warning("SQLite writer queue: no turn after %s ms; waiting on SQLite's lock", SQLITE_BUSY_TIMEOUT_MS)
        connection.info[_HOLDS_WRITER_LOCK] = held
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release(connection.info)
            raise

    # Given back once SQLite's COMMIT or ROLLBACK has run: the engine's commit/rollback events fire before the
    # driver call, and a waiter let in then would find SQLite still locked. These dialect methods get the pool's
    # connection proxy, whose `info` is the connection's.
    dialect = engine.dialect
    driver_commit, driver_rollback = dialect.do_commit, dialect.do_rollback

    def _commit_then_release(dbapi_connection: Any) -> None:
        try:
            driver_commit(dbapi_connection)
        finally:
            _release(_info_of(dbapi_connection))

    def _rollback_then_release(dbapi_connection: Any) -> None:
        try:
            driver_rollback(dbapi_connection)
        finally:
            _release(_info_of(dbapi_connection))

    dialect.do_commit = _commit_then_release  # type: ignore[method-assign]
    dialect.do_rollback = _rollback_then_release  # type: ignore[method-assign]
    event.listen(engine.pool, "checkin", lambda _dbapi, record: _release(record.info) if record is not None else None)
    event.listen(engine.pool, "invalidate", lambda _dbapi, record, _error: _release(record.info))

    return engine


def _info_of(dbapi_connection: Any) -> dict[str, Any]:
    """The pool's info dict of a proxied connection; none for a bare driver connection (the dialect's first
    connect) or a proxy without a pool entry."""
    try:
        info: dict[str, Any] = dbapi_connection.info
    except (AttributeError, NotImplementedError):
        return {}
    return info
