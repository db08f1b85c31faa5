"""Twilio's status callbacks: signed form posts that move a sent SMS to delivered or undelivered."""

from urllib.parse import urlencode

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from twilio.request_validator import RequestValidator

from apps.channels.registry import backends_reset
from apps.notifications.delivery.receipts import early_receipt_apply
from apps.notifications.models import Delivery, DeliveryStatus, EarlyReceipt
from tests.channels.deliveries import delivery_for
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db

AUTH_TOKEN = "twilio-auth-token"
PUBLIC_BASE_URL = "https://notifier.example.com"
PATH = "/api/v1/providers/twilio/status"


@pytest.fixture(autouse=True)
def sms_enabled(settings):
    settings.PUBLIC_BASE_URL = PUBLIC_BASE_URL
    settings.NOTIFIER_CHANNELS = {
        **settings.NOTIFIER_CHANNELS,
        "sms": {"BACKEND": "apps.channels.backends.twilio.TwilioSmsBackend",
                "OPTIONS": {"account_sid": "AC1", "auth_token": AUTH_TOKEN, "from_number": "+15005550006"}},
    }
    backends_reset()
    yield
    backends_reset()


@pytest.fixture
def sent_sms():
    delivery = delivery_for(RecipientFactory(phone="+14155550123"), "sms", {"text": "hi"})
    delivery.status = DeliveryStatus.SENT
    delivery.provider_message_id = "SM0123456789abcdef0123456789abcdef"
    delivery.sent_at = timezone.now()
    delivery.save()
    return delivery


def callback(params: dict, *, url: str = PUBLIC_BASE_URL + PATH, signature: str | None = None, token: str = AUTH_TOKEN):
    """POST the callback as Twilio does: form-encoded, signed over the URL it called."""
    if signature is None:
        signature = RequestValidator(token).compute_signature(url, params)
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature} if signature else {}
    return APIClient().post(PATH, urlencode(params), content_type="application/x-www-form-urlencoded", **headers)


def status_params(delivery, status: str, **extra) -> dict:
    return {"MessageSid": delivery.provider_message_id, "MessageStatus": status, "AccountSid": "AC1",
            "To": "+14155550123", "ApiVersion": "2010-04-01", **extra}


def test_delivered_moves_the_sent_delivery_to_delivered(sent_sms):
    response = callback(status_params(sent_sms, "delivered"))

    assert response.status_code == 204
    sent_sms.refresh_from_db()
    assert sent_sms.status == DeliveryStatus.DELIVERED


@pytest.mark.parametrize("twilio_status", ["undelivered", "failed"])
def test_undelivered_and_failed_move_it_to_undelivered_with_twilios_error_code(sent_sms, twilio_status):
    assert callback(status_params(sent_sms, twilio_status, ErrorCode="30003")).status_code == 204

    sent_sms.refresh_from_db()
    assert (sent_sms.status, sent_sms.last_error_code) == (DeliveryStatus.UNDELIVERED, "30003")
    assert "30003" in sent_sms.last_error


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl"])
def test_a_missing_or_wrong_signature_is_refused_and_changes_nothing(sent_sms, signature):
    response = callback(status_params(sent_sms, "delivered"), signature=signature)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_signature"
    sent_sms.refresh_from_db()
    assert sent_sms.status == DeliveryStatus.SENT


def test_a_signature_made_with_another_token_is_refused(sent_sms):
    assert callback(status_params(sent_sms, "delivered"), token="someone-elses-token").status_code == 403


def test_the_signature_is_checked_against_the_public_url_not_the_host_the_request_reached(sent_sms):
    # Behind a proxy this process sees an internal address; Twilio signed the public one.
    internal_url = "http://testserver" + PATH
    assert callback(status_params(sent_sms, "delivered"), url=internal_url).status_code == 403


def test_signed_fields_cannot_be_altered(sent_sms):
    params = status_params(sent_sms, "undelivered")
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE_URL + PATH, params)

    assert callback({**params, "MessageStatus": "delivered"}, signature=signature).status_code == 403


@pytest.mark.parametrize("twilio_status", ["queued", "sending", "sent", "accepted"])
def test_progress_statuses_are_acknowledged_and_ignored(sent_sms, twilio_status):
    assert callback(status_params(sent_sms, twilio_status)).status_code == 204
    sent_sms.refresh_from_db()
    assert sent_sms.status == DeliveryStatus.SENT


def test_repeated_and_contradicting_late_callbacks_change_nothing(sent_sms):
    assert callback(status_params(sent_sms, "delivered")).status_code == 204
    assert callback(status_params(sent_sms, "delivered")).status_code == 204
    assert callback(status_params(sent_sms, "undelivered", ErrorCode="30005")).status_code == 204

    sent_sms.refresh_from_db()
    assert (sent_sms.status, sent_sms.last_error_code) == (DeliveryStatus.DELIVERED, "")


def test_a_receipt_cannot_resurrect_a_delivery_that_is_not_sent(sent_sms):
    sent_sms.status = DeliveryStatus.FAILED
    sent_sms.save()

    assert callback(status_params(sent_sms, "delivered")).status_code == 204
    sent_sms.refresh_from_db()
    assert sent_sms.status == DeliveryStatus.FAILED


def test_a_receipt_for_an_unknown_message_is_acknowledged(sent_sms):
    params = status_params(sent_sms, "delivered", MessageSid="SMffffffffffffffffffffffffffffffff")
    assert callback(params).status_code == 204


def test_a_signed_callback_without_the_status_fields_is_a_400(sent_sms):
    response = callback({"AccountSid": "AC1"})

    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {"MessageSid", "MessageStatus"}


def test_json_is_not_what_twilio_sends(sent_sms):
    response = APIClient().post(PATH, {"MessageSid": "x"}, format="json", HTTP_X_TWILIO_SIGNATURE="x")
    assert response.status_code == 415


def test_without_sms_through_twilio_the_endpoint_is_not_there(settings, sent_sms):
    settings.NOTIFIER_CHANNELS = {k: v for k, v in settings.NOTIFIER_CHANNELS.items() if k != "sms"}
    backends_reset()

    response = callback(status_params(sent_sms, "delivered"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_receipt_before_the_send_is_recorded_is_kept_and_applied_when_it_is(sent_sms):
    sid = sent_sms.provider_message_id
    # Twilio took the message, but the worker has not committed `sent` with its sid yet.
    Delivery.objects.filter(id=sent_sms.id).update(status=DeliveryStatus.SENDING, provider_message_id="")

    assert callback(status_params(sent_sms, "undelivered", ErrorCode="30003")).status_code == 204
    assert callback(status_params(sent_sms, "delivered")).status_code == 204  # the first final receipt wins
    sent_sms.refresh_from_db()
    assert sent_sms.status == DeliveryStatus.SENDING

    # The worker records the send, then looks for a receipt that came first.
    Delivery.objects.filter(id=sent_sms.id).update(status=DeliveryStatus.SENT, provider_message_id=sid)
    sent_sms.refresh_from_db()
    early_receipt_apply(sent_sms)

    sent_sms.refresh_from_db()
    assert (sent_sms.status, sent_sms.last_error_code) == (DeliveryStatus.UNDELIVERED, "30003")
    assert not EarlyReceipt.objects.exists()


def test_receipts_reach_twilio_when_it_is_not_the_channels_first_backend(settings, sent_sms):
    twilio = settings.NOTIFIER_CHANNELS["sms"]
    settings.NOTIFIER_CHANNELS = {**settings.NOTIFIER_CHANNELS, "sms": {"BACKENDS": [
        {"BACKEND": "apps.channels.backends.locmem.OutboxBackend"}, twilio]}}

    assert callback(status_params(sent_sms, "delivered")).status_code == 204

    sent_sms.refresh_from_db()
    assert sent_sms.status == DeliveryStatus.DELIVERED
