"""A corpus of malformed and hostile request bodies for every write endpoint (JSON API and FHIR).

Each entry is refused with a 4xx and a readable message: broken JSON, wrong top-level shapes, deep nesting, huge
strings, NUL characters, wrong types, invalid codes and dates, references to another tenant's records, script in
fields that have a format, wrong FHIR resourceTypes, hostile XML. Built deterministically (no randomness), so a
failure names the same entry every run.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

SCRIPT = "<script>alert(document.cookie)</script>"
NUL = "bad\u0000value"
HUGE = "x" * 300_000  # under the 1 MiB body cap: the field's own limit must refuse it
TOO_BIG = "y" * 1_100_000  # over the body cap: 413
DEEP = 20_000


@dataclass(frozen=True)
class Bad:
    name: str
    body: bytes
    content_type: str = "application/json"


def raw(name: str, text: str | bytes, content_type: str = "application/json") -> Bad:
    return Bad(name, text if isinstance(text, bytes) else text.encode(), content_type)


def as_json(name: str, value: Any, content_type: str = "application/json") -> Bad:
    return Bad(name, json.dumps(value).encode(), content_type)


def broken_json(content_type: str = "application/json") -> list[Bad]:
    texts: list[tuple[str, str | bytes]] = [
        ("empty", ""),
        ("open brace", "{"),
        ("open bracket", "["),
        ("missing value", '{"a":}'),
        ("trailing comma", '{"a": 1,}'),
        ("single quotes", "{'a': 1}"),
        ("unquoted key", "{a: 1}"),
        ("NaN", '{"a": NaN}'),
        ("Infinity", '{"a": Infinity}'),
        ("comment", '{"a": 1 /* c */}'),
        ("two documents", "{}{}"),
        ("bare word", "patient"),
        ("invalid utf-8", b'{"a": "\xff\xfe"}'),
        ("utf-16 body", '{"a": 1}'.encode("utf-16")),
        ("bom then garbage", b"\xef\xbb\xbf{"),
        ("control characters", b'{"a": "\x01\x02"}'),
        ("lone surrogate", '{"a": "\\ud800"}'),
        ("huge exponent", '{"a": 1e999999}'),
        ("deep object", '{"a":' * DEEP + "1" + "}" * DEEP),
        ("deep array", "[" * DEEP + "]" * DEEP),
        ("unterminated string", '{"a": "abc'),
        ("xml sent as json", "<Patient/>"),
    ]
    return [raw(f"broken json: {name}", text, content_type) for name, text in texts]


def wrong_shapes(content_type: str = "application/json") -> list[Bad]:
    values: list[tuple[str, Any]] = [
        ("array", []),
        ("array of objects", [{}]),
        ("string", "patient"),
        ("number", 42),
        ("null", None),
        ("true", True),
        ("empty object", {}),
    ]
    return [as_json(f"shape: {name}", value, content_type) for name, value in values]


def too_big(content_type: str = "application/json") -> list[Bad]:
    return [as_json("body over the size cap", {"text": TOO_BIG}, content_type)]


def mutations(valid: dict[str, Any], invalid_values: dict[str, list[tuple[str, Any]]]) -> Iterator[tuple[str, Any]]:
    """The valid body with one field replaced by each invalid value (REMOVE removes the field). Each gets its own
    source identifier: a resend of a stored source returns the stored record (idempotent create) and would hide
    the refusal under test."""
    for n, (field, values) in enumerate(invalid_values.items()):
        for m, (label, value) in enumerate(values):
            body = copy.deepcopy(valid)
            if isinstance(body.get("source"), dict):
                body["source"] = {"system": "urn:test:corpus", "value": f"corpus-{n}-{m}"}
            target: Any = body  # dicts and lists along the dotted path
            *parents, last = field.split(".")
            for part in parents:
                target = target[int(part)] if part.isdigit() else target[part]
            if value is REMOVE:
                del target[last]
            else:
                target[last] = value
            yield f"{field}: {label}", body


REMOVE = object()
COMMON_TEXT = [("null", None), ("object", {"$ne": 1}), ("NUL", NUL), ("huge", HUGE), ("number", 12)]
DATE = [("not a date", "yesterday"), ("Feb 30", "2026-02-30"), ("US order", "10/05/2026"), ("script", SCRIPT)]
INSTANT = [("no zone", "2026-10-07T09:00:00"), ("month 13", "2026-13-07T09:00:00Z"), ("script", SCRIPT)]
NUMBER = [("string", "lots"), ("negative", -5), ("NaN text", "NaN"), ("huge", 1e308), ("object", {})]
SOURCE = [  # (source is optional: leaving it out is valid)
    ("string", "abc"),
    ("empty value", {"system": "urn:test:x", "value": ""}),
    ("NUL value", {"system": "urn:test:x", "value": NUL}),
    ("huge value", {"system": "urn:test:x", "value": HUGE}),
]
UNKNOWN_FIELD = [("unknown field", {"surprise": 1})]


def json_api_bodies(kind: str, valid: dict[str, Any], other_tenant_patient: str) -> list[Bad]:
    """Field-level mutations of a valid create body for one record kind."""
    plan: dict[str, list[tuple[str, Any]]] = {"source": SOURCE}
    if kind == "patients":
        plan |= {
            # A family name may be left out when a given name or name_text carries the name (R4 HumanName parts are
            # all optional, and some people have one name); "no name at all" below is the refusal.
            "family_name": [entry for entry in COMMON_TEXT if entry[0] != "null"],
            "birth_date": [*DATE, ("unix zero", "0"), ("far future", "9999-12-31")],
            "sex": [("invalid code", "x"), ("script", SCRIPT), ("null", None)],
            "identifiers": [
                ("object", {}),
                ("21 identifiers", [{"system": "urn:a", "value": str(n)} for n in range(21)]),
            ],
            "identifiers.0.value": [("NUL", NUL), ("null", None)],
        }
    elif kind == "practitioners":
        plan |= {
            "family_name": [*COMMON_TEXT, ("missing", REMOVE)],
            "role": [("invalid code", "wizard"), ("script", SCRIPT)],
        }
    elif kind == "enrollments":
        plan |= {
            "patient_id": [("other tenant", other_tenant_patient), ("missing patient", "nope"), ("NUL", NUL)],
            "protocol_id": [("unknown protocol", "homeopathy"), ("script", SCRIPT)],
            "start_date": DATE,
        }
    elif kind == "ketamine-administrations":
        plan |= {
            "patient_id": [("other tenant", other_tenant_patient), ("missing", REMOVE)],
            "drug": [("invalid code", "lsd"), ("script", SCRIPT)],
            "route": [("invalid code", "smoked")],
            "dose_mg_per_kg": NUMBER,
            "body_weight_kg": NUMBER,
            "started_at": INSTANT,
            "ended_at": [("before start", "2026-10-07T08:00:00+00:00")],
            "vital_signs": [("string", "fine"), ("object", {})],
            "vital_signs.0.systolic_mmhg": NUMBER,
            "sedation_score": [("string", "sleepy"), ("negative", -1)],
        }
    elif kind == "cbt-sessions":
        plan |= {
            "patient_id": [("other tenant", other_tenant_patient)],
            "session_number": [("zero", 0), ("negative", -3), ("string", "first")],
            "status": [("invalid code", "maybe"), ("script", SCRIPT)],
            "setting": [("invalid code", "telepathy")],
            "planned_start": INSTANT,
            "modules_covered": [("string", "all"), ("NUL item", [NUL])],
        }
    elif kind == "questionnaire-responses":
        plan |= {
            "patient_id": [("other tenant", other_tenant_patient)],
            "instrument": [("unknown", "phq-99"), ("script", SCRIPT)],
            "authored_at": INSTANT,
            "answers": [
                ("string", "all fine"),
                ("duplicates", [{"link_id": "/44250-9", "value_integer": 1}] * 2),
            ],
            "answers.0.value_integer": [("out of range", 7), ("negative", -1), ("string", "often")],
            "answers.0.link_id": [("unknown item", "/0000-0"), ("script", SCRIPT)],
        }
    bodies = [as_json(f"{kind} {label}", body) for label, body in mutations(valid, plan)]
    bodies.append(as_json(f"{kind} unknown field", {**valid, "surprise": 1}))
    if kind == "patients":
        nameless = {**valid, "family_name": None, "given_name": None, "name_text": None}
        bodies.append(as_json(f"{kind} no name at all", nameless))
    return bodies


def fhir_bodies(resource_type: str, valid: dict[str, Any], other_tenant_patient: str) -> list[Bad]:
    fhir = "application/fhir+json"
    plan: dict[str, list[tuple[str, Any]]] = {
        "resourceType": [
            ("other type", "Observation" if resource_type != "Observation" else "Patient"),
            ("unknown type", "Spaceship"),
            ("script", SCRIPT),
            ("null", None),
            ("number", 7),
        ],
    }
    if resource_type == "Patient":
        plan |= {
            "gender": [("invalid code", "x"), ("script", SCRIPT)],
            "birthDate": [*DATE, ("number", 0)],
            "name": [("string", "Ada"), ("NUL family", [{"family": NUL}])],
            "identifier": [("object", {"value": 1})],
        }
    else:
        plan |= {
            "subject": [
                ("other tenant", {"reference": f"Patient/{other_tenant_patient}"}),
                ("missing patient", {"reference": "Patient/nope"}),
                ("traversal", {"reference": "Patient/../../metadata"}),
                ("absolute elsewhere", {"reference": "https://evil.example/fhir/Patient/1"}),
            ],
            "status": [("invalid code", "sort-of")],
            "authored": [("not a date", "soon"), ("script", SCRIPT)],
            "item": [
                ("string", "fine"),
                (
                    "unknown answer code",
                    [
                        {
                            "linkId": "/44250-9",
                            "answer": [{"valueCoding": {"system": "http://loinc.org", "code": "LA9999-9"}}],
                        }
                    ],
                ),
            ],
        }
    bodies = [as_json(f"FHIR {resource_type} {label}", body, fhir) for label, body in mutations(valid, plan)]
    bodies.append(
        raw(
            f"FHIR {resource_type} XML external entity",
            '<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<Patient xmlns="http://hl7.org/fhir"><gender value="&x;"/></Patient>',
            "application/fhir+xml",
        )
    )
    bodies.append(
        raw(
            f"FHIR {resource_type} XML billion laughs",
            '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
            '<Patient xmlns="http://hl7.org/fhir"><gender value="&d;"/></Patient>',
            "application/fhir+xml",
        )
    )
    bodies.append(raw(f"FHIR {resource_type} XML deep", "<a>" * DEEP + "</a>" * DEEP, "application/fhir+xml"))
    return bodies


def bundle_bodies(valid_entry: dict[str, Any], other_tenant_patient: str) -> list[Bad]:
    fhir = "application/fhir+json"

    def bundle(**overrides: Any) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "transaction", "entry": [valid_entry], **overrides}

    cases: list[tuple[str, Any]] = [
        ("not a bundle", {"resourceType": "Patient"}),
        ("document type", bundle(type="document")),
        ("no type", {"resourceType": "Bundle", "entry": [valid_entry]}),
        ("entry not a list", bundle(entry={"a": 1})),
        ("entry without request", bundle(entry=[{"resource": valid_entry["resource"]}])),
        ("DELETE method", bundle(entry=[{**valid_entry, "request": {"method": "DELETE", "url": "Patient/1"}}])),
        ("PATCH method", bundle(entry=[{**valid_entry, "request": {"method": "PATCH", "url": "Patient/1"}}])),
        ("url names nothing", bundle(entry=[{**valid_entry, "request": {"method": "POST", "url": ""}}])),
        ("url of another type", bundle(entry=[{**valid_entry, "request": {"method": "POST", "url": "Spaceship"}}])),
        (
            "PUT other tenant",
            bundle(entry=[{**valid_entry, "request": {"method": "PUT", "url": f"Patient/{other_tenant_patient}"}}]),
        ),
        ("too many entries", bundle(entry=[valid_entry] * 1001)),
        ("script in url", bundle(entry=[{**valid_entry, "request": {"method": "POST", "url": SCRIPT}}])),
        (
            "second entry broken",
            bundle(entry=[valid_entry, {**valid_entry, "resource": {"resourceType": "Patient", "gender": "x"}}]),
        ),
    ]
    return [as_json(f"Bundle {label}", body, fhir) for label, body in cases]
