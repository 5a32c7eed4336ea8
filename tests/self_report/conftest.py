"""Fixtures of the self-report tests: the pages' test app (tests/web/conftest.py) and a settable clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from service import clock
from tests.web.conftest import api_as, browser, web_app, web_engine, web_settings  # noqa: F401 - fixtures


class Clock:
    """service.clock.now_utc, as the self-report package reads it, fixed until moved."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def move(self, **delta: float) -> datetime:
        from datetime import timedelta

        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fixed = Clock()
    monkeypatch.setattr(clock, "now_utc", lambda: fixed.now)
    yield fixed
