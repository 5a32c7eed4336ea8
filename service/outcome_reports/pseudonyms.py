"""Pseudonymous patient ids for exports: HMAC-SHA256 of the patient id under a key per tenant.

The tenant's key is HMAC(TANDEM_OUTCOMES_PSEUDONYM_KEY, tenant id), so one secret serves every hospital and two
hospitals' pseudonyms of the same id differ. A pseudonym is stable: the quality office can link one patient's rows
across periods and exports without learning who it is; rotating the setting breaks that link on purpose.
Outside production an unset key is derived from the development token secret; production refuses the export
until the setting is set.
"""

from __future__ import annotations

import hashlib
import hmac

from service.errors import NotConfigured
from service.settings import Settings

PSEUDONYM_HEX = 20  # 80 bits: collisions negligible at hospital sizes, short enough for a spreadsheet


def tenant_key(settings: Settings, tenant_id: str) -> bytes:
    secret = settings.outcomes_pseudonym_key
    if secret is None:
        if settings.environment == "production":
            raise NotConfigured("set TANDEM_OUTCOMES_PSEUDONYM_KEY before exporting outcomes")
        secret = "outcomes-pseudonyms:" + settings.dev_token_secret
    return hmac.new(secret.encode(), tenant_id.encode(), hashlib.sha256).digest()


def pseudonym(key: bytes, patient_id: str) -> str:
    return hmac.new(key, patient_id.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]
