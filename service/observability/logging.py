"""Structured logs: one JSON object per line on stderr, from the standard library's logging.

Fields: time, level, logger, message, and - when the record carries them - request_id, route (the template),
method, status, duration_ms, plus the exception's type and traceback for errors. Only those names are copied
from `extra`: a stray `extra={"body": ...}` never reaches the log. Exceptions are logged by type and traceback;
the traceback shows code, not values (locals are never rendered).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from service.observability.redaction import install_log_redaction, redact
from service.settings import Settings

# The only `extra` fields a log line may carry (none can hold a body, a query string or patient data).
ALLOWED_EXTRA = ("request_id", "route", "method", "status", "duration_ms", "worker_id", "outbox_id", "target_id")
_HANDLER_NAME = "tandem-json"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ALLOWED_EXTRA:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
            entry["traceback"] = record.exc_text or redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(settings: Settings, *, level: int | str | None = None, stream: Any = None) -> None:
    """JSON lines on stderr for the root logger; idempotent. Development keeps INFO, elsewhere INFO too
    (access lines are INFO), tests WARNING. uvicorn's own access log stays off (`--no-access-log`): its lines
    carry the raw path and query string."""
    chosen = level if level is not None else ("WARNING" if settings.environment == "test" else "INFO")
    install_log_redaction()  # before anything logs: no query string, identifier or name in any line
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(chosen)
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False
    access.disabled = True
