"""The security headers of every HTML page Tandem serves: the coordinator pages and the API documentation.

One policy for both: no inline script or style, nothing from another origin, never framed. Swagger UI's stylesheet
draws its icons as data: images, hence img-src data:.
"""

from __future__ import annotations

from collections.abc import Mapping

SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}
