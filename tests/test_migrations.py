"""The schema is made only by migrations: they upgrade, downgrade and upgrade again on both databases,
and the models agree with them (alembic check)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect

from service.db import migrations
from service.db.engine import make_engine
from service.records.base import metadata
from tests.conftest import create_postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    url, drop = create_postgres_database()
    try:
        yield url
    finally:
        drop()


def _tables(url: str) -> set[str]:
    engine = make_engine(url, pool_size=1)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_database: str) -> None:
    migrations.upgrade(empty_database)
    assert _tables(empty_database) == set(metadata.tables)
    command.check(migrations.alembic_config(empty_database))  # raises if models and migrations disagree
    migrations.downgrade(empty_database, "base")
    assert _tables(empty_database) == set()
    migrations.upgrade(empty_database)
    assert _tables(empty_database) == set(metadata.tables)


def test_revision_files_are_date_prefixed() -> None:
    versions = Path(__file__).resolve().parent.parent / "migrations" / "versions"
    names = [p.name for p in versions.glob("*.py")]
    assert names
    assert all(name[:4].isdigit() and name[4] == "_" for name in names), names


def test_the_app_never_creates_tables_itself() -> None:
    service_dir = Path(__file__).resolve().parent.parent / "service"
    offenders = [p for p in service_dir.rglob("*.py") if "create_all(" in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_bearer_targets_lose_their_environment_variable_name(empty_database: str) -> None:
    """Issue #16, finding 1: a stored `token_env` goes on upgrade (the admin writes the token instead); a downgrade
    cannot name a variable for the old code, so it switches bearer targets off."""
    from sqlalchemy import text

    migrations.upgrade(empty_database, "0c1bfc20fc08")
    engine = make_engine(empty_database, pool_size=1)
    columns = "id, tenant_id, source_system, source_id, created_at, updated_at, version, name, base_url, auth, push, "
    columns += "pull, requests_per_second, batch_size, enabled, code_map"
    insert = text(
        f"INSERT INTO sync_targets ({columns}) VALUES (:id, 't', 's', :id, :now, :now, 1, :id, 'https://e/fhir', "
        ":auth, '[]', '[]', 5, 20, :enabled, '{}')"
    )
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO tenants (id, name, created_at) VALUES ('t', 't', :now)"), {"now": "2026-01-01"}
            )
            for target_id, auth in (
                ("bearer", {"kind": "bearer", "token_env": "TANDEM_DEV_TOKEN_SECRET"}),
                ("none", {"kind": "none"}),
            ):
                connection.execute(
                    insert, {"id": target_id, "auth": json.dumps(auth), "now": "2026-01-01", "enabled": True}
                )
        migrations.upgrade(empty_database)
        with engine.connect() as connection:
            stored: dict[str, Any] = dict(connection.execute(text("SELECT id, auth FROM sync_targets")).all())
        assert {k: _json(v) for k, v in stored.items()} == {"bearer": {"kind": "bearer"}, "none": {"kind": "none"}}
        migrations.downgrade(empty_database, "0c1bfc20fc08")
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, auth, enabled FROM sync_targets ORDER BY id")).all()
        assert [(r[0], _json(r[1]), bool(r[2])) for r in rows] == [
            ("bearer", {"kind": "none"}, False),
            ("none", {"kind": "none"}, True),
        ]
    finally:
        engine.dispose()


def _json(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


def test_statuses_an_enrollment_state_may_hide_are_recomputed(empty_database: str) -> None:
    """Issue #21 item 5: stored on_hold/completed/discontinued statuses become due, so the sweep applies the rule
    that an open urgent finding outranks the enrollment's state."""
    from sqlalchemy import text

    migrations.upgrade(empty_database, "b46015e5695a")
    engine = make_engine(empty_database, pool_size=1)
    insert = text(
        "INSERT INTO plan_statuses (tenant_id, enrollment_id, patient_id, protocol_id, protocol_version, start_date, "
        "status, phase, urgency, open_flags, open_urgent, open_warnings, primary_instrument, score_trend, overdue, "
        "computed_at, detail) VALUES ('t', :id, 'p', 'iv', '1', '2026-01-01', :status, 'induction', 3, ',', 1, 0, "
        "'phq-9', '[]', :no, '2026-01-02', '{}')"
    )
    try:
        with engine.begin() as connection:
            for status in ("on_hold", "completed", "discontinued", "on_track", "at_risk"):
                connection.execute(insert, {"id": status, "status": status, "no": False})
        migrations.upgrade(empty_database, "5e0a7d1c9b42")
        with engine.connect() as connection:
            due = connection.execute(
                text("SELECT enrollment_id FROM plan_statuses WHERE next_recompute_at IS NOT NULL")
            ).scalars()
            assert set(due) == {"on_hold", "completed", "discontinued"}
    finally:
        engine.dispose()


def test_statuses_are_recomputed_for_the_new_reason_wording(empty_database: str) -> None:
    """Issue #21 item 6: every stored status is due, so closed reasons are stored again reading as closed; a
    downgrade strips `next_step`, which the old models would refuse."""
    from sqlalchemy import text

    migrations.upgrade(empty_database, "5e0a7d1c9b42")
    engine = make_engine(empty_database, pool_size=1)
    detail = {"reasons": [{"code": "phq9_item9_positive", "message": "m"}], "status": "at_risk"}
    insert = text(
        "INSERT INTO plan_statuses (tenant_id, enrollment_id, patient_id, protocol_id, protocol_version, start_date, "
        "status, phase, urgency, open_flags, open_urgent, open_warnings, primary_instrument, score_trend, overdue, "
        "computed_at, detail) VALUES ('t', :id, 'p', 'iv', '1', '2026-01-01', 'at_risk', 'induction', 3, ',', 1, 0, "
        "'phq-9', '[]', :no, '2026-01-02', :detail)"
    )
    try:
        with engine.begin() as connection:
            for n in range(3):
                connection.execute(insert, {"id": f"e{n}", "no": False, "detail": json.dumps(detail)})
        migrations.upgrade(empty_database)
        with engine.begin() as connection:
            due = connection.execute(text("SELECT count(*) FROM plan_statuses WHERE next_recompute_at IS NOT NULL"))
            assert due.scalar_one() == 3
            with_step = {"reasons": [{"code": "phq9_item9_positive", "message": "m", "next_step": "call"}]}
            connection.execute(text("UPDATE plan_statuses SET detail = :d"), {"d": json.dumps(with_step)})
        migrations.downgrade(empty_database, "5e0a7d1c9b42")
        with engine.connect() as connection:
            stored = [_json(d) for d in connection.execute(text("SELECT detail FROM plan_statuses")).scalars()]
        assert stored == [{"reasons": [{"code": "phq9_item9_positive", "message": "m"}]}] * 3
    finally:
        engine.dispose()


def test_statuses_are_recomputed_for_what_happened_and_missed_measurements(empty_database: str) -> None:
    """Issue #21 items 4 and 6: every stored status is due, so it is stored again with `what_happened` and the
    missed measurement slots; a downgrade strips both, which the old models would refuse."""
    from sqlalchemy import text

    before = "ff6277576689"
    migrations.upgrade(empty_database, before)
    engine = make_engine(empty_database, pool_size=1)
    insert = text(
        "INSERT INTO plan_statuses (tenant_id, enrollment_id, patient_id, protocol_id, protocol_version, start_date, "
        "status, phase, urgency, open_flags, open_urgent, open_warnings, primary_instrument, score_trend, overdue, "
        "computed_at, detail) VALUES ('t', :id, 'p', 'iv', '1', '2026-01-01', 'at_risk', 'induction', 3, ',', 1, 0, "
        "'phq-9', '[]', :no, '2026-01-02', :detail)"
    )
    old = {"reasons": [{"code": "relapse", "message": "m"}], "next_due": {"measurement": {"kind": "measurement"}}}
    try:
        with engine.begin() as connection:
            connection.execute(insert, {"id": "e0", "no": False, "detail": json.dumps(old)})
        migrations.upgrade(empty_database)
        with engine.begin() as connection:
            due = connection.execute(text("SELECT count(*) FROM plan_statuses WHERE next_recompute_at IS NOT NULL"))
            assert due.scalar_one() == 1
            new = {
                "reasons": [{"code": "relapse", "message": "m", "what_happened": "w"}],
                "next_due": {
                    "measurement": {"kind": "measurement", "missed": ["2026-01-09T09:00:00Z"]},
                    "rems_form": None,
                },
            }
            connection.execute(text("UPDATE plan_statuses SET detail = :d"), {"d": json.dumps(new)})
        migrations.downgrade(empty_database, before)
        with engine.connect() as connection:
            [stored] = [_json(d) for d in connection.execute(text("SELECT detail FROM plan_statuses")).scalars()]
        assert stored == {**old, "next_due": {"measurement": {"kind": "measurement"}, "rems_form": None}}
    finally:
        engine.dispose()


def test_patients_get_family_and_given_search_keys(empty_database: str) -> None:
    """Issue #21 item 2: FHIR Patient?family= and given= search folded keys of each part; patients stored before
    the keys existed get theirs (a name sent only as text has neither)."""
    from sqlalchemy import text

    migrations.upgrade(empty_database, "faf9b4145a57")
    engine = make_engine(empty_database, pool_size=1)
    insert = text(
        "INSERT INTO patients (id, tenant_id, created_at, updated_at, version, source_system, source_id, "
        "family_name, given_name, name_text, sex, name_key) VALUES (:id, 't', '2026-01-01', '2026-01-01', 1, 's', "
        ":id, :family, :given, :text, 'female', '')"
    )
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO tenants (id, name, created_at) VALUES ('t', 'T', '2026-01-01')"))
            connection.execute(insert, {"id": "p1", "family": "Pétrov", "given": "Dana  Zoë", "text": None})
            connection.execute(insert, {"id": "p2", "family": None, "given": None, "text": "Ngozi Adeyemi"})
        migrations.upgrade(empty_database, "ff6277576689")
        with engine.connect() as connection:
            keys = connection.execute(text("SELECT id, family_key, given_key FROM patients ORDER BY id")).all()
        assert [tuple(row) for row in keys] == [("p1", "petrov", "dana zoe"), ("p2", "", "")]
    finally:
        engine.dispose()


def test_administrations_stored_before_the_code_token_get_it(empty_database: str) -> None:
    """MedicationAdministration?code (the drug given) reads a token the projection did not write before
    c4d8e2a6f1b3: the current version of each stored administration gets one per coding; an old version and a
    deleted one get none."""
    import sqlalchemy as sa

    migrations.upgrade(empty_database, "73a5f120ae26")
    engine = make_engine(empty_database, pool_size=1)
    resources = sa.table(
        "fhir_resources",
        *(sa.column(name) for name in ("tenant_id", "resource_type", "resource_id", "version_id", "is_current")),
        *(sa.column(name) for name in ("deleted", "last_updated", "patient_id", "record_kind", "record_id")),
        sa.column("body", sa.JSON),
    )
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    drug = {"coding": [{"system": rxnorm, "code": "6130"}], "text": "ketamine"}
    when = "2026-10-07 09:00:00"

    def version(resource_id: str, number: int, *, current: bool, deleted: bool = False) -> dict[str, Any]:
        body = {"resourceType": "MedicationAdministration", "id": resource_id, "medicationCodeableConcept": drug}
        return {
            "tenant_id": "t", "resource_type": "MedicationAdministration", "resource_id": resource_id,
            "version_id": number, "is_current": current, "deleted": deleted, "last_updated": when,
            "patient_id": "p1", "record_kind": "ketamine-administrations", "record_id": resource_id, "body": body,
        }  # fmt: skip

    try:
        with engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO tenants (id, name, created_at) VALUES ('t', 'T', '2026-01-01')"))
            connection.execute(
                sa.insert(resources),
                [
                    version("a1", 1, current=False),
                    version("a1", 2, current=True),
                    version("a2", 1, current=True, deleted=True),
                ],
            )
        migrations.upgrade(empty_database, "c4d8e2a6f1b3")
        tokens = "SELECT resource_id, system, value FROM fhir_search_tokens WHERE param = 'code'"
        with engine.connect() as connection:
            assert [tuple(row) for row in connection.execute(sa.text(tokens))] == [("a1", rxnorm, "6130")]
        migrations.downgrade(empty_database, "73a5f120ae26")
        with engine.connect() as connection:
            assert connection.execute(sa.text(tokens)).all() == []
    finally:
        engine.dispose()
