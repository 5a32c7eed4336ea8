"""The pure rules of patient messages: which channel and address (the patient's preference, what is configured),
quiet hours across midnight and a daylight-saving change, the settings' checks, and the words."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from pydantic import ValidationError

from service.messaging.addressing import Channel, Destination, NoDestination, destination, text_numbers
from service.messaging.content import message_text
from service.messaging.quiet_hours import parse_window, quiet_until
from service.settings import Settings

pytestmark = pytest.mark.pure

EMAIL = {"system": "email", "value": "pat@example.org"}
MOBILE = {"system": "phone", "value": "+47 400 00 000", "use": "mobile"}
LANDLINE = {"system": "phone", "value": "+47 22 00 00 00", "use": "home"}
BOTH: tuple[Channel, ...] = ("email", "sms")


def test_the_preferred_channel_is_the_contact_point_ranked_first() -> None:
    assert destination([EMAIL, {**MOBILE, "rank": 1}], configured=BOTH) == Destination("sms", MOBILE["value"])
    assert destination([{**EMAIL, "rank": 1}, MOBILE], configured=BOTH) == Destination("email", EMAIL["value"])
    # No preference: e-mail first, then a text.
    assert destination([MOBILE, EMAIL], configured=BOTH) == Destination("email", EMAIL["value"])
    assert destination([MOBILE], configured=BOTH) == Destination("sms", MOBILE["value"])
    # A landline ranked first takes no texts: e-mail.
    assert destination([{**LANDLINE, "rank": 1}, EMAIL], configured=BOTH) == Destination("email", EMAIL["value"])
    # The preferred channel not configured here: the other one.
    assert destination([EMAIL, {**MOBILE, "rank": 1}], configured=("email",)) == Destination("email", EMAIL["value"])
    # A named channel is the only one tried.
    assert destination([EMAIL, MOBILE], requested="sms", configured=BOTH) == Destination("sms", MOBILE["value"])
    assert destination([EMAIL], requested="sms", configured=BOTH) == NoDestination("cannot be sent: no mobile number")
    assert destination([MOBILE], configured=("email",)) == NoDestination(
        "cannot be sent: no e-mail address (the patient has a text message contact, but that channel is not configured)"
    )
    assert destination([MOBILE], requested="sms", configured=("email",)) == NoDestination(
        "cannot be sent: text message (TANDEM_SMS_WEBHOOK_URL) is not configured"
    )


def test_old_points_and_landlines_are_not_texted() -> None:
    assert text_numbers([{**MOBILE, "use": "old"}, LANDLINE]) == []
    assert text_numbers([{"system": "sms", "value": "+1", "rank": 2}, {**MOBILE, "rank": 1}]) == [MOBILE["value"], "+1"]
    assert destination([{**EMAIL, "use": "old"}], configured=BOTH) == NoDestination(
        "cannot be sent: no e-mail address or no mobile number"
    )
    assert destination([EMAIL], configured=()) == NoDestination(
        "cannot be sent: neither e-mail (TANDEM_SMTP_HOST) nor text message (TANDEM_SMS_WEBHOOK_URL) is configured"
    )


def test_quiet_hours_cross_midnight_and_follow_daylight_saving() -> None:
    window = parse_window("21:00-08:00")
    assert window == (time(21), time(8))
    assert parse_window("") is None
    oslo = "Europe/Oslo"
    assert quiet_until(datetime(2026, 12, 7, 12, 0, tzinfo=UTC), oslo, window) is None  # 13:00 there
    assert quiet_until(datetime(2026, 12, 7, 20, 0, tzinfo=UTC), oslo, window) == datetime(
        2026, 12, 8, 7, 0, tzinfo=UTC
    )  # 21:00 -> 08:00 next morning (CET, UTC+1)
    assert quiet_until(datetime(2026, 12, 8, 6, 59, tzinfo=UTC), oslo, window) == datetime(
        2026, 12, 8, 7, 0, tzinfo=UTC
    )
    assert quiet_until(datetime(2026, 12, 8, 7, 0, tzinfo=UTC), oslo, window) is None  # 08:00 sharp: awake
    # The night the clocks go forward (29 March 2026, 02:00 -> 03:00): 08:00 is CEST, UTC+2.
    assert quiet_until(datetime(2026, 3, 28, 23, 0, tzinfo=UTC), oslo, window) == datetime(
        2026, 3, 29, 6, 0, tzinfo=UTC
    )
    # A window within one day, and none.
    assert quiet_until(datetime(2026, 12, 7, 12, 30, tzinfo=UTC), "UTC", parse_window("12:00-13:00")) == datetime(
        2026, 12, 7, 13, 0, tzinfo=UTC
    )
    assert quiet_until(datetime(2026, 12, 7, 3, 0, tzinfo=UTC), "UTC", None) is None


def test_the_settings_refuse_what_cannot_work() -> None:
    base = {"environment": "development"}
    with pytest.raises(ValidationError, match="HH:MM-HH:MM"):
        Settings.model_validate({**base, "message_quiet_hours": "9pm-8am"})
    with pytest.raises(ValidationError, match="BY_TENANT"):
        Settings.model_validate({**base, "message_quiet_hours_by_tenant": {"a": "25:00-08:00"}})
    with pytest.raises(ValidationError, match="TANDEM_SMS_WEBHOOK_SECRET"):
        Settings.model_validate({**base, "sms_webhook_url": "https://gateway.example.org/sms"})
    with pytest.raises(ValidationError, match="smtp_tls"):
        Settings.model_validate({**base, "smtp_tls": "ssl"})
    production = {
        "environment": "production",
        "dev_token_secret": "x" * 40,
        "trusted_issuers": {"https://idp.example.org": "https://idp.example.org/jwks"},
        "public_base_url": "https://tandem.hospital.example.org",
    }
    assert Settings.model_validate({**production, "smtp_tls": "starttls", "smtp_password": "secret"}).smtp_password
    with pytest.raises(ValidationError, match="unencrypted"):
        Settings.model_validate({**production, "smtp_tls": "none", "smtp_password": "secret"})
    assert Settings.model_validate({**base, "message_quiet_hours": ""}).message_quiet_hours == ""


def test_the_words_carry_the_link_and_the_expiry_in_the_patients_zone() -> None:
    expires = datetime(2026, 12, 15, 6, 0, tzinfo=UTC)
    text = message_text("invitation", link="https://t.example.org/r/abc", expires_at=expires, zone="America/Chicago")
    assert "expires on Tuesday 15 December 2026 at 00:00 (America/Chicago)" in text.plain
    assert text.sms == (
        "Your care team asked you to complete a short questionnaire. https://t.example.org/r/abc "
        "(the link can be used once and expires Tuesday 15 December 2026 at 00:00 (America/Chicago))"
    )
    # HTML-escaped: a link cannot break out of its attribute.
    odd = message_text("reminder", link='https://t.example.org/r/"><b>', expires_at=expires, zone="UTC")
    assert '"><b>' not in odd.html and "&quot;&gt;&lt;b&gt;" in odd.html
