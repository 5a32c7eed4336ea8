"""FHIR wire formats: JSON (application/fhir+json, application/json) and XML (application/fhir+xml).

XML goes through fhir.resources' own XML support, so what we accept and emit is checked against the R4 models.
In the API package, beside operation_outcome.py: /api answers FHIR clients in FHIR too, and /fhir builds on it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import ValidationError

from fhir_mappings.release import any_model_for
from service.errors import TandemError, UnsupportedMediaType, invalid
from service.records.base import nul_in

Format = Literal["json", "xml"]
FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"
MEDIA_TYPES = {"json": FHIR_JSON, "xml": FHIR_XML}
_JSON_TYPES = {FHIR_JSON, "application/json", "application/json+fhir", "json"}
_XML_TYPES = {FHIR_XML, "application/xml", "text/xml", "application/xml+fhir", "xml"}


class NotAcceptable(TandemError):
    status_code = 406
    title = "Not acceptable"
    issue_code = "not-supported"


def response_format(accept: str | None, format_parameter: str | None) -> Format:
    """_format wins over Accept (FHIR http.html#mime-type); anything else we cannot write is a 406."""
    if format_parameter:
        wanted = [format_parameter.strip().lower()]
    else:
        wanted = [part.split(";")[0].strip().lower() for part in (accept or "").split(",") if part.strip()]
    if not wanted:
        return "json"
    for media_type in wanted:
        if media_type in _JSON_TYPES or media_type in ("*/*", "application/*"):
            return "json"
        if media_type in _XML_TYPES:
            return "xml"
    raise NotAcceptable(f"cannot answer as {', '.join(wanted)}; ask for {FHIR_JSON} or {FHIR_XML}")


def request_format(content_type: str | None) -> Format:
    media_type = (content_type or FHIR_JSON).split(";")[0].strip().lower()
    if media_type in _JSON_TYPES:
        return "json"
    if media_type in _XML_TYPES:
        return "xml"
    raise UnsupportedMediaType(f"cannot read {media_type}; send {FHIR_JSON} or {FHIR_XML}")


def parse_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The resource as a JSON-shaped dict, whichever format it came in."""
    if request_format(content_type) == "json":
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            raise invalid("body", f"not valid JSON: {error}") from None
        except RecursionError:
            raise invalid("body", "nested too deeply to be a FHIR resource") from None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("resourceType"), str):
            raise invalid("resourceType", "the body is not a FHIR resource (no resourceType)")
        if nul_in(parsed):
            raise invalid("body", "contains a NUL character, which no FHIR string may hold")
        return parsed
    return _from_xml(body)


def _from_xml(body: bytes) -> dict[str, Any]:
    try:
        from lxml import etree

        root = etree.fromstring(body, parser=etree.XMLParser(resolve_entities=False, no_network=True))
        resource_type = etree.QName(root).localname
        model = any_model_for(resource_type)
        resource = model.model_validate_xml(body)
    except (ValidationError, ValueError, KeyError, SyntaxError) as error:
        raise invalid("body", f"not a FHIR R4 XML resource: {str(error).splitlines()[0]}") from None
    result: dict[str, Any] = json.loads(resource.model_dump_json())
    return result


def render(resource: dict[str, Any], fmt: Format) -> bytes:
    if fmt == "json":
        return json.dumps(resource, separators=(",", ":"), ensure_ascii=False).encode()
    model = any_model_for(resource["resourceType"])
    xml: str | bytes = model.model_validate(resource).model_dump_xml()
    return xml if isinstance(xml, bytes) else xml.encode()
