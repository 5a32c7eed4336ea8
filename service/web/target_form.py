"""The add/edit form of an EHR target: what the browser posts, turned into the API's target body (the one
validation, service/sync/targets.py), and the refusals put back beside the fields they are about.

The code map and referral rules are JSON structures edited through the API; the form keeps them as stored.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args

from pydantic import BaseModel, ConfigDict, Field

from service.errors import FieldProblem
from service.sync.targets import PullKind, PushKind, SyncTargetPublic

Short = Annotated[str, Field(max_length=1024)]
PUSH_KINDS: tuple[str, ...] = get_args(PushKind)
PULL_KINDS: tuple[str, ...] = get_args(PullKind)
AUTH_KINDS = {"none": "None", "bearer": "Bearer token", "smart-backend": "SMART Backend Services"}
SMART_FIELDS = ("client_id", "token_url", "key_id", "algorithm", "scope")
LABELS = {
    "name": "Name",
    "base_url": "FHIR base URL",
    "auth_kind": "Authentication",
    "token": "Bearer token",
    "client_id": "Client id",
    "token_url": "Token URL",
    "key_id": "Our signing key id",
    "algorithm": "Algorithm",
    "scope": "Scope",
    "push": "Sent to this EHR",
    "pull": "Pulled from this EHR",
    "mrn_system": "MRN system",
    "requests_per_second": "Requests per second",
    "batch_size": "Batch size",
    "enabled": "Enabled",
    "version": "Version",
}


class TargetForm(BaseModel):
    """The form's fields as posted (all text: a checkbox is "on" or absent)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    csrf_token: Annotated[str, Field(max_length=200)] = ""
    name: Short = ""
    base_url: Short = ""
    auth_kind: Short = "none"
    token: Annotated[str, Field(max_length=8192)] = ""
    client_id: Short = ""
    token_url: Short = ""
    key_id: Short = ""
    algorithm: Short = "RS384"
    scope: Short = ""
    push: Annotated[list[Short], Field(max_length=len(PUSH_KINDS) + 4)] = []
    pull: Annotated[list[Short], Field(max_length=len(PULL_KINDS) + 4)] = []
    mrn_system: Short = ""
    requests_per_second: Short = "5"
    batch_size: Short = "20"
    enabled: Short = ""
    version: Short = ""

    def target_body(self, *, with_enabled: bool) -> dict[str, Any]:
        """The API's target fields (SyncTargetFields) from the form; left for the one validation to judge."""
        auth: dict[str, Any] = {"kind": self.auth_kind}
        if self.auth_kind == "smart-backend":
            auth |= {name: getattr(self, name) for name in SMART_FIELDS if getattr(self, name)}
        body: dict[str, Any] = {
            "name": self.name,
            "base_url": self.base_url,
            "auth": auth,
            "push": list(self.push),
            "pull": list(self.pull),
            "mrn_system": self.mrn_system or None,
            "requests_per_second": _number(self.requests_per_second, float),
            "batch_size": _number(self.batch_size, int),
        }
        if with_enabled:
            body["enabled"] = self.enabled == "on"
        return body

    @classmethod
    def of(cls, target: SyncTargetPublic) -> TargetForm:
        """The form filled with a stored target (never its token)."""
        auth = target.auth.model_dump()
        return cls(
            name=target.name,
            base_url=target.base_url,
            auth_kind=auth.get("kind", "none"),
            **{name: str(auth.get(name) or "") for name in SMART_FIELDS if auth.get(name)},
            push=list(target.push),
            pull=list(target.pull),
            mrn_system=target.mrn_system or "",
            requests_per_second=f"{target.requests_per_second:g}",
            batch_size=str(target.batch_size),
            enabled="on" if target.enabled else "",
            version=str(target.version),
        )


def field_errors(problems: list[FieldProblem]) -> tuple[dict[str, str], list[str]]:
    """Each refusal beside its field (by the form's name for it), and every one in words for the summary."""
    by_field: dict[str, str] = {}
    summary: list[str] = []
    for problem in problems:
        parts = [p for p in problem.field.replace("[", ".").split(".") if p]
        name = next((p for p in reversed(parts) if p in LABELS), None)
        if parts and parts[0] == "auth" and name is None:
            name = "auth_kind"
        message = problem.message[:1].upper() + problem.message[1:]
        if name is not None:
            by_field.setdefault(name, message)
            summary.append(f"{LABELS[name]}: {problem.message}")
        else:
            summary.append(problem.message if problem.field in ("body", "") else f"{problem.field}: {problem.message}")
    return by_field, summary


def _number(text: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(text)
    except ValueError:
        return text  # refused by the validation, in its words, beside the field
