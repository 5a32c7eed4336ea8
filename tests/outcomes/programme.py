"""Loading the synthetic programme (service/demo_programme.py) into a tenant of its own, once per database, and
what the generator planted, counted the way the outcomes report should count it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from service.db.unit_of_work import unit_of_work
from service.demo_loader import load_demo_tenant
from service.demo_programme import Planted, ProgrammePatient, generate_programme
from service.settings import Settings
from service.tenants import register_tenant


@dataclass(frozen=True)
class Loaded:
    tenant_id: str
    planted: list[Planted]


def load_programme(engine: Engine, settings: Settings, *, seed: int, cbt_effect: bool, patients: int = 40) -> Loaded:
    tenant_id = f"prog-{uuid.uuid4().hex[:10]}"
    with unit_of_work(engine) as session:
        register_tenant(session, tenant_id=tenant_id, name=f"Programme {seed}")
    demo = generate_programme(seed=seed, patients=patients, now=datetime.now(UTC), cbt_effect=cbt_effect)
    load_demo_tenant(engine, tenant_id=tenant_id, demo=demo, settings=settings)
    planted = [p.planted for p in demo.patients if isinstance(p, ProgrammePatient)]
    return Loaded(tenant_id, planted)


def responders(planted: list[Planted], adherent: bool) -> list[Planted]:
    return [p for p in planted if p.responder and p.adherent == adherent]
