"""The synthetic programmes, loaded once per database for the whole package (loading is the slow part)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.app import create_app
from service.settings import Settings
from tests.conftest import make_settings
from tests.outcomes.programme import Loaded, load_programme


@pytest.fixture(scope="package")
def raw(database_url: str) -> Iterator[TestClient]:
    """The same service with a cell size of 1: every count shown, to check the counts themselves."""
    with TestClient(create_app(make_settings(database_url, outcomes_min_cell=1))) as raw_client:
        yield raw_client


@pytest.fixture(scope="package")
def planted_effect(engine: Engine, settings: Settings) -> Loaded:
    return load_programme(engine, settings, seed=23, cbt_effect=True)


@pytest.fixture(scope="package")
def no_effect(engine: Engine, settings: Settings) -> Loaded:
    # No effect planted: the log-rank p is then uniform over seeds (2 of seeds 1-29 fall under 0.05 by chance, as
    # they should); seed 4 is one where chance made no difference, so the test asks for overlap, not luck.
    return load_programme(engine, settings, seed=4, cbt_effect=False)
