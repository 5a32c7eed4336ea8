"""Operating the service: Prometheus metrics and structured JSON logs (the 503 for a database that went away is
the edge's: service/api/db_errors.py).

Wiring (service/app.py and the process entry points):

    from service.observability import configure_logging, install_observability
    configure_logging(settings)          # once per process, before serving
    install_observability(app)           # in create_app, after the error handlers and add_middleware

Nothing here reads or logs request bodies, query strings, raw paths or patient data: requests are labelled by
their route template (`/api/v1/patients/{record_id}`), never by the path that carries an id.
"""

from __future__ import annotations

from service.observability.install import install_observability
from service.observability.logging import JsonFormatter, configure_logging
from service.observability.metrics import DatabaseCollector, HttpMetrics

__all__ = [
    "DatabaseCollector",
    "HttpMetrics",
    "JsonFormatter",
    "configure_logging",
    "install_observability",
]
