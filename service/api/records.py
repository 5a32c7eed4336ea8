"""JSON API routes for every record kind: create, read, list, update.

Routes are generated from the record kinds so each kind behaves the same way; they validate, call one store
function and shape the HTTP response. (No `from __future__ import annotations` here: FastAPI reads the
dynamically chosen body and response models from the annotations at run time.)
"""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Discriminator, Field, Tag, create_model

from service.api.deps import SessionDep, SettingsDep, context_for
from service.api.problems import ERROR_RESPONSES, UPDATE_ERROR_RESPONSES, WRITE_ERROR_RESPONSES
from service.audit_trail import RequestContext
from service.auth.scopes import Needs, needs
from service.record_store import store
from service.record_store.kinds import RECORD_KINDS, RecordKind, StoredKind
from service.record_store.store import ListFilters
from service.records.base import ApiModel, DateOrTimeText, RecordMeta
from service.records.received import ReceivedResourcePublic

API_PREFIX = "/api/v1"


def etag(version: int) -> str:
    return f'W/"{version}"'


def _record_headers(response: Response, public: RecordMeta) -> None:
    response.headers["ETag"] = etag(public.version)
    response.headers["Cache-Control"] = "no-store"


def _update_model(kind: StoredKind) -> type[BaseModel]:
    """A partial version of the kind's fields: anything left out keeps its stored value."""
    fields: dict[str, Any] = {
        name: (info.annotation | None, Field(default=None, description=info.description))  # type: ignore[operator]
        for name, info in kind.fields_schema.model_fields.items()
    }
    return create_model(
        f"{kind.schema_name}Update",
        __base__=ApiModel,  # unknown fields refused, NUL refused, dates/times/booleans strict
        __doc__=f"Changes to {kind.a_label}; only the fields sent are changed. Send If-Match with the ETag.",
        **fields,
    )


def _page_model(kind: StoredKind) -> type[BaseModel]:
    return create_model(
        f"{kind.schema_name}Page",
        items=(list[kind.public_schema], ...),  # type: ignore[name-defined]
        next_cursor=(str | None, Field(default=None, description="Pass as `cursor` to get the next page")),
    )


class FhirResource(BaseModel):
    """A FHIR R4 resource (sent as application/fhir+json); the service maps it to a record or refuses it."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "resourceType": "QuestionnaireResponse",
                    "questionnaire": "http://loinc.org/q/44249-1",
                    "status": "completed",
                    "subject": {"reference": "Patient/0b9f3a52-5d7c-4f55-9a0e-2f7a1c0d4e11"},
                    "authored": "2026-10-06T08:30:00+01:00",
                    "item": [
                        {
                            "linkId": "/44250-9",
                            "answer": [{"valueCoding": {"system": "http://loinc.org", "code": "LA6569-3"}}],
                        }
                    ],
                }
            ]
        },
    )

    resourceType: str  # noqa: N815 - the FHIR element name


def _body_shape(value: Any) -> str:
    return "fhir" if isinstance(value, dict) and "resourceType" in value else "record"


def _create_body(kind: StoredKind) -> Any:
    """The create body: our JSON record, or, where the kind takes one, a FHIR resource."""
    if kind.from_fhir is None:
        return kind.create_schema
    return Annotated[
        Annotated[kind.create_schema, Tag("record")] | Annotated[FhirResource, Tag("fhir")],
        Discriminator(_body_shape),
    ]


def record_router(kind: StoredKind) -> APIRouter:
    router = APIRouter(prefix=f"{API_PREFIX}/{kind.path}", tags=[kind.label])
    create_body: Any = _create_body(kind)
    update_schema: Any = _update_model(kind)
    public_schema: Any = kind.public_schema
    page_schema: Any = _page_model(kind)
    plural = kind.schema_name + "s"

    def touches(letter: str) -> Needs | None:
        return needs(f"{kind.fhir_type}.{letter}") if kind.fhir_type is not None else None

    CreateContext = Annotated[
        RequestContext, Depends(context_for("create", kind.path, kind.writers, scopes=touches("c")))
    ]
    ReadContext = Annotated[RequestContext, Depends(context_for("read", kind.path, kind.readers, scopes=touches("r")))]
    ListContext = Annotated[RequestContext, Depends(context_for("list", kind.path, kind.readers, scopes=touches("s")))]
    UpdateContext = Annotated[
        RequestContext, Depends(context_for("update", kind.path, kind.writers, scopes=touches("u")))
    ]

    @router.post(
        "",
        operation_id=f"create{kind.schema_name}",
        summary=f"Record {kind.a_label}",
        description=(
            f"Stores {kind.a_label}. A `source` identifier already stored returns the stored record with 200 "
            "instead of creating a duplicate, so a resend is safe."
        ),
        status_code=201,
        response_model=public_schema,
        responses={
            200: {"model": public_schema, "description": "Already stored under this source identifier"},
            **WRITE_ERROR_RESPONSES,
        },
    )
    def create(
        request: Request,
        response: Response,
        session: SessionDep,
        ctx: CreateContext,
        payload: Annotated[create_body, Body()],
    ) -> Any:
        if isinstance(payload, FhirResource) and kind.from_fhir is not None:
            payload = kind.from_fhir(session, ctx, payload.model_dump())
        public, created = store.create_record(session, ctx, kind, payload)
        response.status_code = 201 if created else 200
        response.headers["Location"] = str(request.url_for(f"read{kind.schema_name}", record_id=public.id))
        _record_headers(response, public)
        return public

    @router.get(
        "/{record_id}",
        operation_id=f"read{kind.schema_name}",
        name=f"read{kind.schema_name}",
        summary=f"Read {kind.a_label}",
        response_model=public_schema,
        responses=ERROR_RESPONSES,
    )
    def read(record_id: str, response: Response, session: SessionDep, ctx: ReadContext) -> Any:
        public = store.read_record(session, ctx, kind, record_id)
        _record_headers(response, public)
        return public

    @router.get(
        "",
        operation_id=f"list{plural}",
        summary=f"List {kind.label}s",
        description=f"Ordered by {kind.time_column.replace('_', ' ')}, oldest first; follow `next_cursor` for more.",
        response_model=page_schema,
        responses=ERROR_RESPONSES,
    )
    def list_(
        response: Response,
        session: SessionDep,
        settings: SettingsDep,
        ctx: ListContext,
        patient_id: Annotated[str | None, Query(max_length=64)] = None,
        status: Annotated[str | None, Query(max_length=32)] = None,
        since: Annotated[
            date | AwareDatetime | None,
            DateOrTimeText,
            Query(alias="from", description=f"{kind.time_column} on or after"),
        ] = None,
        until: Annotated[
            date | AwareDatetime | None,
            DateOrTimeText,
            Query(alias="to", description=f"{kind.time_column} before"),
        ] = None,
        identifier: Annotated[
            str | None,
            Query(max_length=512, description="system|value of the source identifier (or, for patients, an MRN)"),
        ] = None,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
        limit: Annotated[int | None, Query(ge=1, description="Page size; capped by the server")] = None,
    ) -> Any:
        page_size = min(limit or settings.default_page_size, settings.max_page_size)
        filters = ListFilters(
            limit=page_size,
            patient_id=patient_id,
            status=status,
            since=store.parse_date_bound(since),
            until=store.parse_date_bound(until),
            identifier=identifier,
            cursor=cursor,
        )
        page = store.list_records(session, ctx, kind, filters)
        response.headers["Cache-Control"] = "no-store"
        return page_schema(items=page.items, next_cursor=page.next_cursor)

    @router.patch(
        "/{record_id}",
        operation_id=f"update{kind.schema_name}",
        summary=f"Change {kind.a_label}",
        description='Partial update. `If-Match` must carry the ETag last read (W/"n"); a stale one gets 412.',
        response_model=public_schema,
        responses=UPDATE_ERROR_RESPONSES,
    )
    def update(
        record_id: str,
        response: Response,
        session: SessionDep,
        ctx: UpdateContext,
        changes: Annotated[update_schema, Body()],
        if_match: Annotated[str | None, Header(alias="If-Match", max_length=64)] = None,
    ) -> Any:
        public = store.update_record(
            session,
            ctx,
            kind,
            record_id,
            changes.model_dump(exclude_unset=True),
            if_match,
        )
        _record_headers(response, public)
        return public

    if not isinstance(kind, RecordKind):
        return router  # an administration table: nothing is sent to us as FHIR for it

    @router.get(
        "/{record_id}/received",
        operation_id=f"received{kind.schema_name}",
        summary=f"What senders sent for {kind.a_label}",
        description=(
            "Provenance: every FHIR resource a sender sent for this record (POST, PUT, Bundle entry, import, EHR "
            "pull), exactly as sent, with who sent it, when, and the elements Tandem did not use. Oldest first; "
            "the same resource sent again is kept once. Read and audited like the record."
        ),
        response_model=list[ReceivedResourcePublic],
        responses=ERROR_RESPONSES,
    )
    def received(record_id: str, response: Response, session: SessionDep, ctx: ReadContext) -> Any:
        rows = store.received_for(session, ctx, kind, record_id)
        response.headers["Cache-Control"] = "no-store"
        return [ReceivedResourcePublic.model_validate(row, from_attributes=True) for row in rows]

    return router


def record_routers() -> list[APIRouter]:
    """The clinical record kinds' routes (the sync targets' are service/api/sync_targets.py)."""
    return [record_router(kind) for kind in RECORD_KINDS]
