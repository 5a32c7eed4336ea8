"""No query string, identifier or name reaches a log line, from any library's logger.

A log record factory (installed once per process by `install_log_redaction`, from configure_logging) renders
each record's message at creation and scrubs it, and its traceback text, before any handler or filter sees it:

- a URL's or path's query string becomes `?[redacted]` (FHIR searches carry `identifier=system|MRN`,
  `name=`, `birthdate=`; httpx logs every request's full URL);
- an identifier token `system|value` becomes `[identifier]`;
- a JSON-looking name, identifier or birth date field keeps its key and loses its value.

A factory rather than a handler filter: it runs for every logger, including those that do not propagate to the
root, and for handlers added later (pytest's capture too). httpx and httpcore are set to WARNING as well: their
INFO/DEBUG lines are a request trace, not the service's log.
"""

from __future__ import annotations

import logging
import re
from typing import Any

QUIET_LOGGERS = ("httpx", "httpcore")
REDACTED = "[redacted]"
_QUERY = re.compile(r"(?P<base>(?:[a-zA-Z][a-zA-Z0-9+.-]*://|/)[^\s?#\"'<>]*)\?[^\s\"'<>]*")
_IDENTIFIER = re.compile(r"[A-Za-z][\w+.-]*:[^\s|\"'<>]*\|[^\s&\"',;)\]}]+")
_FIELDS = re.compile(
    r"(?P<key>[\"']?(?:family|given|name|family_name|given_name|birth_?[dD]ate|identifier|identifiers|mrn)[\"']?"
    r"\s*[:=]\s*)(?P<value>\"[^\"]*\"|'[^']*'|\[[^\]]*\]|\{[^}]*\})"
)


def redact(text: str) -> str:
    text = _QUERY.sub(lambda m: f"{m.group('base')}?{REDACTED}", text)
    text = _IDENTIFIER.sub("[identifier]", text)
    return _FIELDS.sub(lambda m: f"{m.group('key')}{REDACTED}", text)


_base_factory: Any = None


def _redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record: logging.LogRecord = _base_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a malformed format string: keep the template, never the arguments
        message = str(record.msg)
    record.msg = redact(message)
    record.args = ()
    if record.exc_info and record.exc_info[0] is not None:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    return record


def install_log_redaction() -> None:
    """Idempotent: wraps the current record factory once, and quiets the HTTP client's request trace."""
    global _base_factory
    if _base_factory is None:
        _base_factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(_redacting_factory)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
