"""Prometheus metrics: HTTP traffic per route template, and gauges read from the database at scrape time.

HTTP (recorded by ObservabilityMiddleware):
  tandem_http_requests_total{method, route, status}      requests finished
  tandem_http_request_duration_seconds{method, route}    latency histogram
  tandem_http_requests_in_progress{method}                requests being served
The `route` label is the route template (`/api/v1/patients/{record_id}`, `/fhir/{resource_type}/{resource_id}`);
a path that matched no route is `<unmatched>`. Raw paths never become labels: ids are patient data, and they
would make the label set unbounded.

Database (DatabaseCollector, computed per scrape with a few grouped COUNTs on indexed columns):
  tandem_outbox_messages{tenant, target, status}          outbox rows by status
  tandem_outbox_open_oldest_age_seconds{tenant, target}   age of the oldest open (pending/in_flight/failed) row
  tandem_sync_attempts_total{target, outcome}             delivery attempts recorded, by outcome (2xx/4xx/5xx/error)
  tandem_plan_statuses{tenant, status}                    enrollments per plan status
  tandem_metrics_scrape_error                              1 when the last database read failed
Tenant and target ids are configuration, not patient data.

Each app gets its own CollectorRegistry (tests build many apps in one process).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from service.clock import now_utc

logger = logging.getLogger("tandem.metrics")
UNMATCHED_ROUTE = "<unmatched>"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "tandem_http_requests",
            "HTTP requests finished, by route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "tandem_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_progress = Gauge(
            "tandem_http_requests_in_progress", "HTTP requests being served", ["method"], registry=registry
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)


OUTBOX_COUNTS = text(
    "SELECT tenant_id, target_id, status, COUNT(*) FROM sync_outbox GROUP BY tenant_id, target_id, status"
)
OUTBOX_OLDEST = text(
    "SELECT tenant_id, target_id, MIN(created_at) FROM sync_outbox "
    "WHERE status IN ('pending', 'in_flight', 'failed') GROUP BY tenant_id, target_id"
)
SYNC_OUTCOMES = text(
    "SELECT target_id, outcome, COUNT(*) FROM (SELECT o.target_id AS target_id, CASE "
    "WHEN a.status_code IS NULL THEN 'error' WHEN a.status_code < 300 THEN '2xx' "
    "WHEN a.status_code < 500 THEN '4xx' ELSE '5xx' END AS outcome "
    "FROM sync_attempts a JOIN sync_outbox o ON o.id = a.outbox_id) AS attempts GROUP BY target_id, outcome"
)
PLAN_STATUSES = text("SELECT tenant_id, status, COUNT(*) FROM plan_statuses GROUP BY tenant_id, status")


def _age_seconds(oldest: datetime | str | None, now: datetime) -> float:
    if oldest is None:
        return 0.0
    if isinstance(oldest, str):  # SQLite returns MIN() of a datetime column as text
        oldest = datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return max((now - oldest).total_seconds(), 0.0)


class DatabaseCollector(Collector):
    """Gauges read from the database on each scrape (so every API process reports the same, shared truth)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> Iterable[Metric]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        outbox = GaugeMetricFamily(
            "tandem_outbox_messages", "Outbox rows by status", labels=["tenant", "target", "status"]
        )
        oldest = GaugeMetricFamily(
            "tandem_outbox_open_oldest_age_seconds",
            "Age of the oldest outbox row not yet delivered (pending, in_flight or failed)",
            labels=["tenant", "target"],
        )
        attempts = GaugeMetricFamily(
            "tandem_sync_attempts_total", "Delivery attempts recorded, by outcome", labels=["target", "outcome"]
        )
        plans = GaugeMetricFamily("tandem_plan_statuses", "Enrollments per plan status", labels=["tenant", "status"])
        error = GaugeMetricFamily("tandem_metrics_scrape_error", "1 when the last database read for metrics failed")
        try:
            now = now_utc()
            with self.engine.connect() as connection:
                for tenant, target, status, count in connection.execute(OUTBOX_COUNTS):
                    outbox.add_metric([tenant, target, status], float(count))
                for tenant, target, first in connection.execute(OUTBOX_OLDEST):
                    oldest.add_metric([tenant, target], _age_seconds(first, now))
                for target, outcome, count in connection.execute(SYNC_OUTCOMES):
                    attempts.add_metric([target, outcome], float(count))
                for tenant, status, count in connection.execute(PLAN_STATUSES):
                    plans.add_metric([tenant, status], float(count))
                connection.rollback()
            error.add_metric([], 0.0)
        except SQLAlchemyError as failure:
            logger.warning("metrics: database read failed: %s", type(failure).__name__)
            error.add_metric([], 1.0)
            yield error
            return
        yield from (outbox, oldest, attempts, plans, error)
