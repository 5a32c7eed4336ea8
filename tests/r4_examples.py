"""The official HL7 FHIR R4 examples (npm package hl7.fhir.r4.examples 4.0.1, CC0), fetched at test time.

Not copied into the repo (../shared/fixtures/SOURCES.md): `npm pack` fetches the package once into a cache
(TANDEM_R4_EXAMPLES_CACHE, default ~/.cache/tandem), npm checking the registry's integrity hash; tests read
resources straight from the tarball. Without npm or the registry the tests skip with the reason, and fail
under REQUIRE_FIXTURES=1.
"""

from __future__ import annotations

import functools
import json
import os
import tarfile
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.npm_pack import npm_tarball

PACKAGE = "hl7.fhir.r4.examples"
VERSION = "4.0.1"
TARBALL = f"{PACKAGE}-{VERSION}.tgz"


def _cache_dir() -> Path:
    return Path(os.environ.get("TANDEM_R4_EXAMPLES_CACHE", Path.home() / ".cache" / "tandem"))


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("REQUIRE_FIXTURES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def examples_tarball() -> Path:
    """The package tarball, fetched with `npm pack` on first use (tests/npm_pack.py)."""
    return npm_tarball(PACKAGE, VERSION, _cache_dir(), _unavailable)


@functools.cache
def r4_examples(resource_type: str) -> dict[str, dict[str, Any]]:
    """Every official example of one resource type, by file name (e.g. 'Patient-pat3.json'); read once per
    process (the tarball is 18 MB). Callers must not change what they get: copy it first."""
    prefix = f"package/{resource_type}-"
    found: dict[str, dict[str, Any]] = {}
    with tarfile.open(examples_tarball(), "r:gz") as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.startswith(prefix) and member.name.endswith(".json"):
                handle = archive.extractfile(member)
                assert handle is not None
                found[member.name.removeprefix("package/")] = json.load(handle)
    return found
