"""Packages from the npm registry that tests read but the repository does not copy (the R4 examples, axe-core).

`npm pack` fetches the pinned version once into a cache, npm checking the registry's integrity hash; the tarball
is moved into place atomically, as xdist workers share the cache. Without npm or the registry the caller decides
what happens: its `unavailable` skips with the reason, or fails where CI requires the package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


def npm_tarball(package: str, version: str, cache: Path, unavailable: Callable[[str], NoReturn]) -> Path:
    tarball = f"{package}-{version}.tgz"
    path = cache / tarball
    if path.is_file():
        return path
    npm = shutil.which("npm")
    if npm is None:
        unavailable(f"npm is not installed: cannot fetch {package}@{version}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        done = subprocess.run(
            [npm, "pack", f"{package}@{version}", "--silent"],
            cwd=scratch,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        fetched = Path(scratch) / tarball
        if done.returncode != 0 or not fetched.is_file():
            unavailable(f"npm pack {package}@{version} failed: {done.stderr.strip()[:300]}")
        os.replace(fetched, path)
    return path
