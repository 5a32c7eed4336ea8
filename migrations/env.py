"""Alembic environment: migrations run against TANDEM_DATABASE_URL (or the URL the caller set)."""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from sqlmodel.sql.sqltypes import AutoString

from service import outbox  # noqa: F401 - importing registers every table
from service.break_glass import tables as break_glass_tables  # noqa: F401
from service.caseload import tables  # noqa: F401
from service.cds_hooks import tables as cds_hooks_tables  # noqa: F401
from service.db.engine import make_engine
from service.db.types import UtcDateTime
from service.projection import tables as fhir_tables  # noqa: F401
from service.records import (  # noqa: F401
    appointment,
    audit,
    cbt,
    enrollment,
    ketamine,
    patient,
    patient_note,
    practitioner,
    questionnaire,
    received,
    sync_target,
    tenant,
    user_time_zone,
    vital_sign,
)
from service.records.base import metadata
from service.self_report import tables as self_report_tables  # noqa: F401
from service.settings import get_settings
from service.smart_launch import tables as smart_launch_tables  # noqa: F401
from service.subscriptions import tables as subscription_tables  # noqa: F401
from service.sync import tables as sync_tables  # noqa: F401
from service.worklist import tables as worklist_tables  # noqa: F401

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

url = config.get_main_option("sqlalchemy.url") or get_settings().database_url


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Write our column types as plain SQLAlchemy types, so migrations never import application code."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def run_migrations_offline() -> None:
    context.configure(
        url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True, render_item=render_item
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url, pool_size=1)
    with engine.connect() as connection:
        # Batch mode lets ALTERs work on SQLite, which rebuilds the table instead.
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=True,
            compare_type=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
