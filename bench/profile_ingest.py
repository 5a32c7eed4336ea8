"""Profile a transaction Bundle ingest in-process with pyinstrument (the route's work minus HTTP).

.venv/bin/python -m bench.profile_ingest [--db sqlite|postgres] [--entries 300] [--html var/ingest.html]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from pyinstrument import Profiler

from bench.bundle_ingest import build_bundle, patients_for
from bench.common import database
from bench.data import context
from service.db.unit_of_work import unit_of_work
from service.fhir import bundles
from service.fhir.router import authorize


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--entries", type=int, default=300)
    parser.add_argument("--html")
    args = parser.parse_args()
    with database(args.db) as db:
        tenant_id = db.tenant()
        body = json.dumps(build_bundle(db, tenant_id, patients_for(args.entries), args.entries)).encode()
        ctx = context(tenant_id, db)
        ctx.principal = replace(ctx.principal, scopes=frozenset({"system/*.*"}))
        profiler = Profiler(interval=0.0005)
        with unit_of_work(db.engine) as session:
            profiler.start()
            bundle = json.loads(body)
            bundles.process_bundle(
                session,
                ctx,
                bundle,
                max_entries=10_000,
                authorize=lambda resource_type, interaction: authorize(ctx.principal, resource_type, interaction),
            )
            profiler.stop()
        if args.html:
            with open(args.html, "w") as out:
                out.write(profiler.output_html())
        print(profiler.output_text(unicode=False, color=False))


if __name__ == "__main__":
    main()
