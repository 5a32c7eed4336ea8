"""The fast suite (`make test-fast`, `pytest -m pure`): the parts that need no database, app or server: mappings,
plan status, instruments and the sync decisions. Listed by path, so a new test in these places is in it without a
decorator; tests/conftest.py marks them `pure`, and fails the collection when a listed path no longer exists or a
pure test asks for a database. Imports nothing, so the Makefile can print the paths cheaply (`python -m`)."""

from __future__ import annotations

PURE_PATHS = (
    "tests/fhir_mappings",
    "tests/plan_status",
    "tests/instruments",
    "tests/sync/test_sync_units.py",
    "tests/sync/test_outcomes.py",
    "tests/sync/test_batched_delivery.py",
    "tests/sync/test_url_safety.py",
    "tests/sync/test_urgent_finding_decisions.py",
    "tests/security/test_log_redaction.py",
    "tests/test_reason_codes.py",
    "tests/test_settings.py",
    "tests/outcomes/test_survival.py",
    "tests/outcomes/test_survival_lifelines.py",
    "tests/outcomes/test_suppression.py",
    "tests/outcomes/test_pseudonyms.py",
)
# Fixtures that reach a database or a running server.
IMPURE_FIXTURES = frozenset({"database_url", "settings", "client", "engine", "sync_app", "sekmet"})

if __name__ == "__main__":
    print(" ".join(PURE_PATHS))
