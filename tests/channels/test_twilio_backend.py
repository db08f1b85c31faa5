"""The Twilio SMS backend through the real `twilio` SDK, against a fake Twilio on loopback."""

import pytest
from django.core.checks import run_checks

from apps.channels.backends.twilio import TwilioSmsBackend
from apps.channels.base import PermanentProviderError, TransientProviderError
from tests.channels.messages import message_for
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db

FROM_NUMBER = "+15005550006"


@pytest.fixture
def backend(twilio, settings):
    settings.PUBLIC_BASE_URL = "https://notifier.example.com"
    return TwilioSmsBackend(account_sid=twilio.account_sid, auth_token=twilio.auth_token, from_number=FROM_NUMBER,
                            api_base_url=twilio.base_url, timeout=5)


def sms(text: str, phone: str = "+14155550123"):
    return message_for("sms", {"text": text}, phone=phone)


def test_a_message_reaches_twilio_with_a_status_callback_and_its_sid_comes_back(backend, twilio):
    result = backend.send(sms("Your code is 123456"))

    [message] = twilio.messages
    assert (message["To"], message["From"], message["Body"]) == ("+14155550123", FROM_NUMBER, "Your code is 123456")
    # Receipts come back to the public address, whatever host the worker runs on.
    assert message["StatusCallback"] == "https://notifier.example.com/api/v1/providers/twilio/status"
    assert result.provider_message_id == message["sid"]
    assert result.response["status"] == "queued"


def test_one_client_serves_every_message_of_the_process(backend, twilio):
    backend.send(sms("one"))
    client = backend._client
    backend.send(sms("two"))

    assert backend._client is client
    assert [m["Body"] for m in twilio.messages] == ["one", "two"]


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (21211, "The 'To' number is not a valid phone number."),
        (21610, "Attempt to send to unsubscribed recipient"),
        (21612, "The 'To' phone number is not currently reachable via SMS"),
        (21614, "'To' number is not a valid mobile number"),
    ],
)
def test_twilio_refusing_the_number_is_a_permanent_error_with_its_code(backend, twilio, code, text):
    twilio.reject_number("+14155550123", 400, code, text)

    with pytest.raises(PermanentProviderError) as raised:
        backend.send(sms("hi"))

    assert raised.value.code == str(code)
    assert text in raised.value.message
    assert raised.value.response["http_status"] == 400
    assert twilio.messages == []


@pytest.mark.parametrize(
    ("http_status", "code"),
    [(429, 20429), (400, 21611), (400, 30001), (500, 20500), (503, 20503)],
)
def test_throttling_queue_overflow_and_server_errors_are_transient(backend, twilio, http_status, code):
    twilio.fail_next(1, http_status, code, "try later")

    with pytest.raises(TransientProviderError) as raised:
        backend.send(sms("hi"))
    assert raised.value.code == str(code)

    # The SDK does not retry by itself: the next attempt is the pipeline's, and it goes through.
    assert twilio.attempts == 1
    assert backend.send(sms("hi")).provider_message_id == twilio.messages[0]["sid"]


def test_wrong_credentials_are_retried_not_failed_so_the_delivery_can_be_replayed(twilio, settings):
    backend = TwilioSmsBackend(account_sid=twilio.account_sid, auth_token="wrong", from_number=FROM_NUMBER,
                               api_base_url=twilio.base_url)

    with pytest.raises(TransientProviderError) as raised:
        backend.send(sms("hi"))

    assert raised.value.code == "20003"


def test_twilio_unreachable_is_transient():
    backend = TwilioSmsBackend(account_sid="AC1", auth_token="t", from_number=FROM_NUMBER,
                               api_base_url=f"http://127.0.0.1:{free_port()}", timeout=2)

    with pytest.raises(TransientProviderError) as raised:
        backend.send(sms("hi"))

    assert raised.value.code == "connection"


def test_a_user_whose_phone_was_removed_fails_without_calling_twilio(backend, twilio):
    with pytest.raises(PermanentProviderError) as raised:
        backend.send(sms("hi", phone=""))

    assert raised.value.code == "no_phone"
    assert twilio.attempts == 0


def test_missing_credentials_fail_the_system_check(settings):
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, settings.TWILIO_FROM_NUMBER = "AC1", "", ""
    settings.NOTIFIER_CHANNELS = {**settings.NOTIFIER_CHANNELS,
                                  "sms": {"BACKEND": "apps.channels.backends.twilio.TwilioSmsBackend"}}

    errors = [e for e in run_checks() if e.id == "notifier.E010"]

    assert [e.msg for e in errors] == [
        "Channel 'sms': TWILIO_AUTH_TOKEN is not set.", "Channel 'sms': TWILIO_FROM_NUMBER is not set."]


def test_a_public_base_url_twilio_cannot_reach_is_a_warning(settings):
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, settings.TWILIO_FROM_NUMBER = "AC1", "t", FROM_NUMBER
    settings.NOTIFIER_CHANNELS = {**settings.NOTIFIER_CHANNELS,
                                  "sms": {"BACKEND": "apps.channels.backends.twilio.TwilioSmsBackend"}}

    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    assert [e.id for e in run_checks() if e.id.startswith("notifier.")] == ["notifier.W010"]
    settings.PUBLIC_BASE_URL = "https://notifier.example.com"
    assert [e.id for e in run_checks() if e.id.startswith("notifier.")] == []
