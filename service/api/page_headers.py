"""The security headers of every HTML page Tandem serves: the coordinator pages and the API documentation.

One policy for both: no inline script or style, nothing from another origin, never framed. Swagger UI's stylesheet
draws its icons as data: images, hence img-src data:.

The one exception: a page session started by a SMART launch from an EHR (service/smart_launch) may be framed by
the origins registered for that EHR, and by nothing else (`frame-ancestors` names them). X-Frame-Options is left
out there: it cannot name an origin (ALLOW-FROM is obsolete), and a browser that enforces frame-ancestors ignores
it anyway (CSP Level 3, §6.4.2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors {ancestors}; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": _POLICY.format(ancestors="'none'"),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def page_security_headers(frame_origins: Sequence[str] = ()) -> Mapping[str, str]:
    """SECURITY_HEADERS, or for an EHR-launched session the same with frame-ancestors naming its EHR's origins."""
    if not frame_origins:
        return SECURITY_HEADERS
    framed = {name: value for name, value in SECURITY_HEADERS.items() if name != "X-Frame-Options"}
    return framed | {"Content-Security-Policy": _POLICY.format(ancestors=" ".join(frame_origins))}
