"""A strict EHR in front of sekmet-fhir: it answers as Epic or Oracle Health would from their published
CapabilityStatements (../shared/fixtures/ehr-capabilities/), and refuses what they refuse.

    with StrictEhr(sekmet.root_url, epic_statement(), require_patient=False) as ehr:
        ehr.url("/fhir")            # the FHIR base: /metadata is the fixture's statement, searches are checked
        ehr.refused()               # the requests it answered 4xx (a pull that works makes none)

What is refused, with 400 and an OperationOutcome naming the parameter (nothing is forwarded):
- a write the statement does not declare (Epic creates Communications but does not update them; it writes no Flag);
- a search of a type the statement does not declare, or whose `search-type` it does not declare;
- under `Prefer: handling=strict`, any search parameter the statement does not declare for the type (Epic
  declares `_lastUpdated` for no type; Oracle Health for a few) — `_offset` excepted only on the server's own
  `next` links (sekmet pages by `_offset`; a client never builds them);
- with `require_patient` (Oracle Health): a search of a clinical type without `patient`, `subject` or `_id`;
- a Bulk Data kick-off at a level the statement does not declare (Epic exports by Group only).
Everything else is forwarded to sekmet without `Prefer: handling=strict` (the emulated statement was enforced
here; sekmet's own narrower parameter table would refuse what the EHR takes, e.g. QuestionnaireResponse?patient).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qsl

from tests.ehr_peer.fault_proxy import Fault, FaultPlan, FaultProxy, ProxyRecord, _outcome, _Request
from tests.shared_fixtures import load_fixture

# Types an EHR serves without a patient (Oracle Health refuses clinical searches without one).
NON_CLINICAL = frozenset(
    {"Patient", "Practitioner", "PractitionerRole", "Organization", "Location", "Group", "Medication", "Device"}
)
PATIENT_PARAMS = frozenset({"patient", "subject", "_id"})
EXPORT_NAMES = frozenset({"export", "$export", "patient-export", "group-export"})


def epic_statement() -> dict[str, Any]:
    statement: dict[str, Any] = load_fixture("ehr-capabilities/epic-r4-sandbox-capabilitystatement.json")
    return statement


def oracle_statement() -> dict[str, Any]:
    statement: dict[str, Any] = load_fixture("ehr-capabilities/oracle-health-r4-capabilitystatement.json")
    return statement


class StrictEhr(FaultProxy):
    def __init__(
        self,
        upstream: str,
        statement: dict[str, Any],
        *,
        require_patient: bool,
        plan: FaultPlan | None = None,
        base_path: str = "/fhir",
    ) -> None:
        super().__init__(upstream, plan)
        self.statement = statement
        self.require_patient = require_patient
        self.base_path = base_path.rstrip("/")
        self.types: dict[str, dict[str, Any]] = {}
        self.system_operations: set[str] = set()
        self.system_interactions: set[str] = set()
        for rest in statement.get("rest") or []:
            if rest.get("mode") != "server":
                continue
            self.system_operations |= {str(o.get("name")) for o in rest.get("operation") or []}
            self.system_interactions |= {str(i.get("code")) for i in rest.get("interaction") or []}
            for resource in rest.get("resource") or []:
                self.types[str(resource["type"])] = resource
        self.refusals: list[tuple[str, str]] = []  # (path?query, why)

    def __enter__(self) -> StrictEhr:
        self.start()
        return self

    def refused(self) -> list[ProxyRecord]:
        return [r for r in self.snapshot() if r.status is not None and 400 <= r.status < 500]

    # ---- judging one request ------------------------------------------------------------------------------------

    def judge(self, method: str, path: str, query: str, headers: list[tuple[str, str]]) -> str | None:
        """Why the emulated EHR refuses the request, or None."""
        if method.upper() != "GET" and path.rstrip("/").startswith(self.base_path):
            return self._judge_write(method.upper(), path.rstrip("/")[len(self.base_path) + 1 :].split("/"))
        if not path.startswith(f"{self.base_path}/") or method.upper() != "GET":
            return None
        parts = path[len(self.base_path) + 1 :].split("/")
        if parts[0] in ("metadata", "bulk-status", "bulk-files", ".well-known"):
            return None
        if parts[-1].startswith("$"):
            return self._judge_operation(parts)
        if len(parts) != 1:
            return None  # a read (Type/id) or history
        resource_type = parts[0]
        declared = self.types.get(resource_type)
        if declared is None:
            return f"{resource_type} is not a supported resource type"
        if "search-type" not in {i.get("code") for i in declared.get("interaction") or []}:
            return f"{resource_type} cannot be searched here"
        names = [name.split(":", 1)[0] for name, _ in parse_qsl(query, keep_blank_values=True)]
        params = {p.get("name") for p in declared.get("searchParam") or []}
        strict = any(k.lower() == "prefer" and "handling=strict" in v for k, v in headers)
        paging = "_offset" in names  # sekmet's own next link
        unknown = sorted({n for n in names if n not in params and not (paging and n == "_offset")})
        if strict and unknown:
            return f"{resource_type} search parameter(s) not supported: {', '.join(unknown)}"
        if self.require_patient and resource_type not in NON_CLINICAL and not PATIENT_PARAMS & set(names):
            return f"a {resource_type} search needs a patient (patient, subject or _id)"
        return None

    def _judge_write(self, method: str, parts: list[str]) -> str | None:
        """A write the statement does not declare: create (POST Type), update (PUT Type/id), patch, delete, and
        batch or transaction Bundles (POST to the base)."""
        if parts == [""]:
            return None if self.system_interactions & {"batch", "transaction"} else "batch Bundles are not supported"
        if parts[-1].startswith("$") or parts[0] in (".well-known", "metadata"):
            return None
        needed = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)
        declared = self.types.get(parts[0])
        if needed is None or (len(parts) == 1) != (needed == "create"):
            return None
        if declared is None or needed not in {i.get("code") for i in declared.get("interaction") or []}:
            return f"{parts[0]} {needed} is not supported"
        return None

    def _judge_operation(self, parts: list[str]) -> str | None:
        name = parts[-1].lstrip("$")
        if name != "export":
            return None
        if len(parts) == 1:
            offered = {o.lstrip("$") for o in self.system_operations}
            return None if "export" in offered else "system-level $export is not supported"
        declared = self.types.get(parts[0]) or {}
        operations = {str(o.get("name")).lstrip("$") for o in declared.get("operation") or []}
        if operations & EXPORT_NAMES:
            return None
        return f"{parts[0]}-level $export is not supported"

    # ---- serving -----------------------------------------------------------------------------------------------

    async def _apply(
        self, request: _Request, writer: asyncio.StreamWriter, fault: Fault | None, record: ProxyRecord
    ) -> bool:
        keep = request.keep_alive
        if request.method.upper() == "GET" and request.path == f"{self.base_path}/metadata":
            record.status = 200
            body = json.dumps(self.statement).encode()
            await self._write(writer, 200, [("Content-Type", "application/fhir+json")], body, keep)
            return keep
        why = self.judge(request.method, request.path, request.query, request.headers)
        if why is not None:
            self.refusals.append((f"{request.path}?{request.query}", why))
            record.status = 400
            body = _outcome("not-supported", why)
            await self._write(writer, 400, [("Content-Type", "application/fhir+json")], body, keep)
            return keep
        request.headers = [(k, v) for k, v in request.headers if not (k.lower() == "prefer" and "handling=strict" in v)]
        return await super()._apply(request, writer, fault, record)
