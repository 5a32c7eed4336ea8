"""What an intake needs to know about where a resource came from, and how its refusals are told."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlmodel import Session

from fhir_mappings import NO_RULE, MappingError, ReferenceResolver, ReferralRule
from service.audit_trail import RequestContext
from service.errors import FieldProblem, InvalidRequest
from service.records.base import ApiModel
from service.records.received import Received

from .code_map import with_standard_codings
from .references import reference_resolver
from .unused import WatchedResource, unused_elements

Model = TypeVar("Model", bound=BaseModel)
Read = TypeVar("Read")
# pydantic error type -> OperationOutcome issue code (anything else is a bad value).
_ISSUE_CODES = {"missing": "required", "extra_forbidden": "structure", "literal_error": "code-invalid"}


@dataclass(frozen=True)
class Intake:
    """One resource's arrival: the tenant it is for, and whose ids its references and id are."""

    session: Session
    tenant_id: str
    canonical_base: str
    resolve: ReferenceResolver  # a reference as the sender wrote it -> our record id (reference_resolver)
    # The namespace of the sender's own ids in the record's `source` (a pulled target's base URL); None when the
    # sender names our records (the facade, the JSON API, an import without --source).
    source_system: str | None = None
    # Identifier systems the sender issues MRNs under (a pulled target's `mrn_system`): an identifier in one of
    # them is an MRN even untyped (Epic types its MRN only with the text "MRN").
    mrn_systems: frozenset[str] = frozenset()
    # How a referral that does not name its protocol chooses one (a pulled target's `referrals` setting).
    referral_rule: ReferralRule = NO_RULE


IntakeFunction = Callable[[Intake, dict[str, Any]], ApiModel]


def refused(error: MappingError) -> InvalidRequest:
    """A reader's refusal as a request problem that keeps its element and its OperationOutcome issue code."""
    return InvalidRequest([FieldProblem(error.location, error.message, issue_code=error.code)])


def mapped(read: Callable[[], Read]) -> Read:
    try:
        return read()
    except MappingError as error:
        raise refused(error) from None


def validated(model: type[Model], body: dict[str, Any], where: str, elements: Mapping[str, str] | None = None) -> Model:
    """The create request; a field the mapping filled badly is located under the resource type, by the FHIR
    element that holds it where `elements` names one (deceased_at -> Patient.deceasedDateTime)."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise InvalidRequest(
            [
                FieldProblem(
                    ".".join([where, *_element_path(detail["loc"], elements or {})]),
                    detail["msg"].removeprefix("Value error, "),
                    issue_code=_ISSUE_CODES.get(detail["type"], "value"),
                )
                for detail in error.errors(include_url=False, include_input=False)
            ]
        ) from None


def _element_path(loc: tuple[int | str, ...], elements: Mapping[str, str]) -> list[str]:
    parts = [str(part) for part in loc]
    if parts and parts[0] in elements:
        parts[0] = elements[parts[0]]
    return parts


def take_in(
    take: IntakeFunction, intake: Intake, resource: dict[str, Any], *, sent: dict[str, Any] | None = None
) -> tuple[ApiModel, Received]:
    """Every intake runs through here: the create request, and what was received (the resource as sent, the
    elements not used) for the store to keep with the record (RequestContext.received). `sent` is the resource as
    its sender wrote it when the intake reads a copy (one with the site's codings mapped to standard ones)."""
    watched = WatchedResource(resource)
    payload = take(intake, watched)
    resource_type = str(resource.get("resourceType"))
    unused = unused_elements(resource_type, watched, intake.canonical_base)
    return payload, Received(resource_type, sent if sent is not None else resource, intake.source_system, unused)


def from_request(take: IntakeFunction) -> Callable[[Session, RequestContext, dict[str, Any]], ApiModel]:
    """The intake of a resource sent to this service (facade, Bundle, import, JSON API): its references name
    our records, or, for an import that names its sender, the sender's ids (ctx.sender_namespace, as a pull);
    site codes in it are translated by the tenant's targets' code maps first."""

    def intake(session: Session, ctx: RequestContext, resource: dict[str, Any]) -> ApiModel:
        namespace = ctx.sender_namespace
        resolve = reference_resolver(session, ctx.tenant_id, source_system=namespace, known=ctx.sender_ids)
        standard = with_standard_codings(session, ctx.tenant_id, resource)
        intake = Intake(session, ctx.tenant_id, ctx.settings.canonical_base, resolve, namespace)
        payload, ctx.received = take_in(take, intake, standard, sent=resource)
        return payload

    return intake
