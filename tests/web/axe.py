"""axe-core (Deque's accessibility engine, npm package axe-core, MPL-2.0), fetched at test time like the R4 examples.

Not copied into the repo: `npm pack` fetches the pinned version once into a cache (TANDEM_AXE_CACHE, default
~/.cache/tandem; npm checks the registry's integrity hash), and the test injects axe.min.js from the tarball into
each page. Without npm or the registry the test skips with the reason, and fails under REQUIRE_BROWSER=1 (make ci).
"""

from __future__ import annotations

import functools
import os
import tarfile
from pathlib import Path
from typing import Any

from tests.npm_pack import npm_tarball
from tests.web.chromium import skip_or_fail

PACKAGE = "axe-core"
VERSION = "4.14.1"
TARBALL = f"{PACKAGE}-{VERSION}.tgz"  # named in messages
SCRIPT = "package/axe.min.js"
# What the issue holds the pages to: no violation axe rates serious or critical (moderate and minor are reported).
BLOCKING = frozenset({"serious", "critical"})


def _cache_dir() -> Path:
    return Path(os.environ.get("TANDEM_AXE_CACHE", Path.home() / ".cache" / "tandem"))


def _tarball() -> Path:
    return npm_tarball(PACKAGE, VERSION, _cache_dir(), skip_or_fail)


@functools.cache
def axe_source() -> str:
    with tarfile.open(_tarball(), "r:gz") as archive:
        handle = archive.extractfile(SCRIPT)
        assert handle is not None, f"{SCRIPT} missing from {TARBALL}"
        return handle.read().decode()


def blocking_violations(page: Any) -> list[dict[str, Any]]:
    """Runs axe on the page as it is (the context must bypass the pages' CSP, which forbids inline scripts) and
    returns the serious and critical violations (WCAG 2.x A/AA rules and axe's best practices)."""
    page.add_script_tag(content=axe_source())
    results: dict[str, Any] = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in results["violations"] if v.get("impact") in BLOCKING]


def describe(violations: list[dict[str, Any]]) -> str:
    """One line per violation and offending element, to read in a failed assertion."""
    lines = []
    for violation in violations:
        for node in violation["nodes"][:5]:
            lines.append(f"{violation['impact']} {violation['id']}: {node['target']} — {node['failureSummary'][:200]}")
    return "\n".join(lines)
