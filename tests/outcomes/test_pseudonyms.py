"""Pseudonyms for the outcomes CSV: keyed per tenant, stable, and refused in production without a key."""

from __future__ import annotations

import pytest

from service.errors import NotConfigured
from service.outcome_reports.pseudonyms import pseudonym, tenant_key
from service.settings import Settings

PRODUCTION = {
    "environment": "production",
    "dev_token_secret": "p" * 48,
    "trusted_issuers": {"https://idp.example.org": "https://idp.example.org/jwks"},
    "public_base_url": "https://tandem.hospital.example",
}


def test_production_refuses_the_export_until_the_key_is_set() -> None:
    with pytest.raises(NotConfigured, match="TANDEM_OUTCOMES_PSEUDONYM_KEY"):
        tenant_key(Settings(**PRODUCTION), "hospital-a")  # type: ignore[arg-type]


def test_pseudonyms_are_stable_per_tenant_and_differ_between_tenants() -> None:
    settings = Settings(**PRODUCTION, outcomes_pseudonym_key="k" * 32)  # type: ignore[arg-type]
    a, b = tenant_key(settings, "hospital-a"), tenant_key(settings, "hospital-b")
    assert pseudonym(a, "patient-1") == pseudonym(tenant_key(settings, "hospital-a"), "patient-1")
    assert pseudonym(a, "patient-1") != pseudonym(b, "patient-1")
    assert pseudonym(a, "patient-1") != pseudonym(a, "patient-2")
    assert "patient-1" not in pseudonym(a, "patient-1") and len(pseudonym(a, "patient-1")) == 20
