"""Access to the real-world fixtures in ../shared/fixtures (never copied into this repo).

On a user's clone the folder is absent and the tests that need it skip with a printed reason;
CI sets REQUIRE_FIXTURES=1 so that a missing folder fails instead of silently skipping.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

SHARED_FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"


def fixture_path(relative: str) -> Path:
    """Path of a shared fixture; skips (or fails under REQUIRE_FIXTURES=1) when it is absent."""
    path = SHARED_FIXTURES / relative
    if not path.is_file():
        reason = f"shared fixture {path} is absent (only CI and the team's machines have ../shared/fixtures)"
        if os.environ.get("REQUIRE_FIXTURES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def load_fixture(relative: str) -> Any:
    """The parsed JSON of a shared fixture, e.g. load_fixture('fhir/uscore7-Questionnaire-phq-9-example.json')."""
    return json.loads(fixture_path(relative).read_text(encoding="utf-8"))
