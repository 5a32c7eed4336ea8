"""A daemon thread of the API process that runs until the app stops: the in-process sweep and the development
delivery worker. Stopping sets the event the body watches and waits for it to finish (at most 30 s)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class BackgroundThread:
    def __init__(self, name: str, body: Callable[[threading.Event], None]) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=body, args=(self._stop,), name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
