"""How many examples a hypothesis property draws: its full count in `make test`, a tenth (at least 10) in
`make test-fast` (TANDEM_FAST_TESTS=1), so the fast suite checks the same properties in seconds, not minutes."""

from __future__ import annotations

import os

FAST = os.environ.get("TANDEM_FAST_TESTS") == "1"


def examples(full: int) -> int:
    return max(10, full // 10) if FAST else full
