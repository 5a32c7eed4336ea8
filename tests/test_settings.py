"""Settings come from the environment and refuse placeholder secrets outside development."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.settings import Settings


@pytest.mark.parametrize("environment", ["production", "test"])
def test_outside_development_the_placeholder_secret_is_refused(
    monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    monkeypatch.setenv("TANDEM_ENVIRONMENT", environment)
    monkeypatch.setenv("TANDEM_TRUSTED_ISSUERS", '{"https://idp.example": "https://idp.example/jwks"}')
    with pytest.raises(ValidationError, match="TANDEM_DEV_TOKEN_SECRET"):
        Settings()
    monkeypatch.setenv("TANDEM_DEV_TOKEN_SECRET", "too-short")
    with pytest.raises(ValidationError, match="at least 32"):
        Settings()


def test_development_runs_with_the_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_ENVIRONMENT", "development")
    monkeypatch.delenv("TANDEM_DEV_TOKEN_SECRET", raising=False)
    assert Settings().dev_issuer_enabled


def test_production_needs_a_trusted_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_ENVIRONMENT", "production")
    monkeypatch.setenv("TANDEM_DEV_TOKEN_SECRET", "x" * 48)
    with pytest.raises(ValidationError, match="TRUSTED_ISSUERS"):
        Settings()


def test_production_with_real_values_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_ENVIRONMENT", "production")
    monkeypatch.setenv("TANDEM_DEV_TOKEN_SECRET", "x" * 48)
    monkeypatch.setenv("TANDEM_TRUSTED_ISSUERS", '{"https://idp.example": "https://idp.example/jwks"}')
    monkeypatch.setenv("TANDEM_PUBLIC_BASE_URL", "https://tandem.hospital.example")
    settings = Settings()
    assert not settings.dev_issuer_enabled


@pytest.mark.parametrize(
    ("base", "words"),
    [
        (None, "production needs TANDEM_PUBLIC_BASE_URL"),  # the loopback default: every link would go nowhere
        ("http://tandem.hospital.example", "production needs TANDEM_PUBLIC_BASE_URL"),  # a patient's link in clear
        ("https://tandem.hospital.example/", "without a trailing slash"),
        ("tandem.hospital.example", r"must be an http\(s\) URL"),
    ],
)
def test_production_needs_the_https_address_patients_and_ehrs_reach(
    monkeypatch: pytest.MonkeyPatch, base: str | None, words: str
) -> None:
    monkeypatch.setenv("TANDEM_ENVIRONMENT", "production")
    monkeypatch.setenv("TANDEM_DEV_TOKEN_SECRET", "x" * 48)
    monkeypatch.setenv("TANDEM_TRUSTED_ISSUERS", '{"https://idp.example": "https://idp.example/jwks"}')
    if base is None:
        monkeypatch.delenv("TANDEM_PUBLIC_BASE_URL", raising=False)
    else:
        monkeypatch.setenv("TANDEM_PUBLIC_BASE_URL", base)
    with pytest.raises(ValidationError, match=words):
        Settings()


def test_database_url_accepts_the_unprefixed_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TANDEM_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.internal/tandem")
    assert Settings().database_url == "postgresql://db.internal/tandem"


def test_the_metrics_token_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every setting is read through Settings (no os.environ in service/): TANDEM_METRICS_TOKEN turns /metrics on."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    monkeypatch.delenv("TANDEM_METRICS_TOKEN", raising=False)
    assert Settings().metrics_token is None
    monkeypatch.setenv("TANDEM_METRICS_TOKEN", "scrape-token-0123456789")
    settings = Settings(database_url="sqlite://")
    assert settings.metrics_token == "scrape-token-0123456789"
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 401
        scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-0123456789"})
        assert scraped.status_code == 200 and "tandem_http_requests_total" in scraped.text
