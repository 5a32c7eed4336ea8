"""SQLite writers of one process queue on a lock before BEGIN IMMEDIATE (service/db/engine.py): every way a
transaction ends gives the lock back, and concurrent writers all get through without 'database is locked' even
with SQLite's own busy wait switched off (so the lock alone keeps them apart, until SQLite's lock is free)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from service.db.engine import make_engine

# A liveness bound, not a timing assertion: a writer left holding the lock makes the next one wait 30 s.
GIVES_WAY_WITHIN_S = 10


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'writers.db'}")

    # No busy wait at all: a writer that reached BEGIN IMMEDIATE while another still held SQLite's lock (our lock
    # given back too early, or not taken) fails at once with 'database is locked' instead of quietly waiting.
    @event.listens_for(engine, "connect")
    def _no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        connection.execute(text("INSERT INTO counter VALUES (0)"))
    yield engine
    engine.dispose()


def _another_thread_can_write(engine: Engine) -> bool:
    done = threading.Event()

    def write() -> None:
        with Session(engine) as session:
            session.execute(text("UPDATE counter SET n = n + 1"))
            session.commit()
        done.set()

    threading.Thread(target=write, daemon=True).start()
    return done.wait(GIVES_WAY_WITHIN_S)


def _commit(engine: Engine) -> None:
    with Session(engine) as session:
        session.execute(text("UPDATE counter SET n = n + 1"))
        session.commit()


def _rollback(engine: Engine) -> None:
    with Session(engine) as session:
        session.execute(text("UPDATE counter SET n = n + 1"))
        session.rollback()


def _close_without_commit(engine: Engine) -> None:
    with Session(engine) as session:
        session.execute(text("SELECT n FROM counter"))


def _error_inside(engine: Engine) -> None:
    with pytest.raises(OperationalError), Session(engine) as session:
        session.execute(text("UPDATE no_such_table SET n = 1"))


def _connection_closed_mid_transaction(engine: Engine) -> None:
    connection = engine.connect()
    connection.execute(text("UPDATE counter SET n = n + 1"))
    connection.close()


def _invalidated(engine: Engine) -> None:
    connection = engine.connect()
    connection.execute(text("UPDATE counter SET n = n + 1"))
    connection.invalidate()  # as after a lost database connection
    connection.rollback()
    connection.close()


@pytest.mark.parametrize(
    "end",
    [_commit, _rollback, _close_without_commit, _error_inside, _connection_closed_mid_transaction, _invalidated],
    ids=lambda end: end.__name__.strip("_"),
)
def test_every_end_of_a_transaction_gives_the_writer_lock_back(engine: Engine, end: Callable[[Engine], None]) -> None:
    end(engine)
    assert _another_thread_can_write(engine)


def test_concurrent_writers_all_get_through(engine: Engine) -> None:
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(25):
                _commit(engine)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engine.connect() as connection:
        assert connection.execute(text("SELECT n FROM counter")).scalar_one() == 16 * 25
