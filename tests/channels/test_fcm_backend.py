"""The FCM push backend through the real `firebase-admin` SDK, against a fake FCM (and its OAuth
token endpoint) on loopback."""

import warnings
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.channels.backends.fcm import PAYLOAD_LIMIT_BYTES, FcmPushBackend
from apps.channels.base import PermanentProviderError, TransientProviderError
from apps.channels.registry import backend_get, backends_reset
from apps.notifications.models import AttemptOutcome, Delivery, DeliveryAttempt, DeliveryStatus
from apps.notifications.sending import delivery_send
from apps.users.models import Device
from tests.channels.deliveries import delivery_for
from tests.fakes.fcm import FakeFcmServer
from tests.notifications.factories import queued_delivery
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db

PUSH = {"title": "Hello Ada", "body": "Your order shipped", "data": {"order": "42", "url": "/orders/42"}}


@pytest.fixture
def backend(fcm, fcm_credentials_file):
    backend = FcmPushBackend(credentials_file=fcm_credentials_file, api_base_url=fcm.base_url, timeout=5)
    yield backend
    backend.close()


@pytest.fixture
def recipient():
    return RecipientFactory()


def add_device(recipient, token: str, platform: str = "android", active: bool = True) -> Device:
    return Device.objects.create(recipient=recipient, token=token, platform=platform, active=active)


def push_delivery(recipient):
    return delivery_for(recipient, "push", {"title": "{{ t }}", "body": "b"})


def test_a_push_goes_to_every_active_device_of_the_user(backend, fcm, recipient):
    add_device(recipient, "token-phone-aaaaaa", "android")
    add_device(recipient, "token-tablet-bbbbbb", "ios")
    add_device(recipient, "token-old-cccccc", "web", active=False)

    result = backend.send(push_delivery(recipient), PUSH)

    assert sorted(m["token"] for m in fcm.messages) == ["token-phone-aaaaaa", "token-tablet-bbbbbb"]
    message = fcm.messages[0]
    assert message["notification"] == {"title": "Hello Ada", "body": "Your order shipped"}
    assert message["data"] == {"order": "42", "url": "/orders/42"}
    devices = result.response["devices"]
    assert [(d["token_suffix"], d["platform"], d["outcome"]) for d in devices] == [
        ("aaaaaa", "android", "sent"), ("bbbbbb", "ios", "sent")]
    assert result.provider_message_id == devices[0]["message_id"]
    assert result.provider_message_id.startswith(f"projects/{fcm.project_id}/messages/")
    # Only the end of a token is ever recorded.
    assert "token-phone" not in str(result.response)


def test_data_values_are_sent_as_strings(backend, fcm, recipient):
    add_device(recipient, "token-1")

    backend.send(push_delivery(recipient), {"title": "t", "body": "b", "data": {"count": 3, "flag": True}})

    assert fcm.messages[0]["data"] == {"count": "3", "flag": "True"}


def test_registration_tokens_go_out_as_tokens_without_deprecation_noise(backend, fcm, recipient):
    add_device(recipient, "token-1")

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        backend.send(push_delivery(recipient), PUSH)

    assert "token" in fcm.messages[0] and "fid" not in fcm.messages[0]


def test_an_unregistered_token_is_deactivated_and_the_other_devices_still_get_it(backend, fcm, recipient):
    gone = add_device(recipient, "token-uninstalled-111111")
    add_device(recipient, "token-phone-222222")
    fcm.unregister_token("token-uninstalled-111111")

    result = backend.send(push_delivery(recipient), PUSH)

    assert [m["token"] for m in fcm.messages] == ["token-phone-222222"]
    assert {d["token_suffix"]: d["outcome"] for d in result.response["devices"]} == {
        "111111": "unregistered", "222222": "sent"}
    gone.refresh_from_db()
    assert gone.active is False


def test_when_every_device_is_unregistered_the_push_fails_permanently(backend, fcm, recipient):
    device = add_device(recipient, "token-uninstalled-111111")
    fcm.unregister_token(device.token)

    with pytest.raises(PermanentProviderError) as raised:
        backend.send(push_delivery(recipient), PUSH)

    assert raised.value.code == "UNREGISTERED"
    device.refresh_from_db()
    assert device.active is False


@pytest.mark.parametrize(
    ("http_status", "fcm_code", "status_name"),
    [(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"), (403, "SENDER_ID_MISMATCH", "PERMISSION_DENIED")],
)
def test_fcm_refusing_the_message_is_a_permanent_error(backend, fcm, recipient, http_status, fcm_code, status_name):
    device = add_device(recipient, "token-1")
    fcm.fail_next(1, http_status, fcm_code, status_name, "refused")

    with pytest.raises(PermanentProviderError) as raised:
        backend.send(push_delivery(recipient), PUSH)

    assert raised.value.code == fcm_code
    assert raised.value.response["devices"][0]["outcome"] == "permanent_error"
    device.refresh_from_db()
    assert device.active is True  # only UNREGISTERED retires a token


def test_a_payload_over_fcms_limit_fails_before_anything_is_sent(backend, fcm, recipient):
    add_device(recipient, "token-1")
    content = {"title": "t", "body": "b", "data": {"blob": "x" * PAYLOAD_LIMIT_BYTES}}

    with pytest.raises(PermanentProviderError) as raised:
        backend.send(push_delivery(recipient), content)

    assert raised.value.code == "payload_too_large"
    assert fcm.attempts == 0


def test_a_payload_just_under_the_limit_goes_out(backend, fcm, recipient):
    add_device(recipient, "token-1")
    content = {"title": "t", "body": "b", "data": {"blob": ""}}
    overhead = len('{"notification":{"title":"t","body":"b"},"data":{"blob":""}}')
    content["data"]["blob"] = "é" * ((PAYLOAD_LIMIT_BYTES - overhead) // 2)  # two bytes each in UTF-8

    backend.send(push_delivery(recipient), content)

    assert len(fcm.messages) == 1


def test_a_user_without_active_devices_fails_permanently(backend, fcm, recipient):
    add_device(recipient, "token-1", active=False)

    with pytest.raises(PermanentProviderError) as raised:
        backend.send(push_delivery(recipient), PUSH)

    assert raised.value.code == "no_active_device"
    assert fcm.attempts == 0


@pytest.mark.parametrize(
    ("http_status", "fcm_code", "status_name"),
    [(503, "UNAVAILABLE", "UNAVAILABLE"), (500, "INTERNAL", "INTERNAL")],
)
def test_server_errors_are_transient_and_not_retried_inside_the_sdk(backend, fcm, recipient, http_status, fcm_code,
                                                                    status_name):
    add_device(recipient, "token-1")
    fcm.fail_next(1, http_status, fcm_code, status_name, "try later")

    with pytest.raises(TransientProviderError) as raised:
        backend.send(push_delivery(recipient), PUSH)

    assert raised.value.code == fcm_code
    assert raised.value.retry_after is None
    # One request per attempt: firebase-admin's own 500/503 retries are off (see fcm.py).
    assert fcm.attempts == 1


def test_quota_exceeded_is_transient_and_carries_fcms_retry_after(backend, fcm, recipient):
    add_device(recipient, "token-1")
    fcm.fail_next(1, 429, "QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED", "Quota exceeded.", retry_after=7)

    with pytest.raises(TransientProviderError) as raised:
        backend.send(push_delivery(recipient), PUSH)

    assert (raised.value.code, raised.value.retry_after) == ("QUOTA_EXCEEDED", 7.0)
    assert fcm.attempts == 1


def test_a_huge_retry_after_is_capped(backend, fcm, recipient, settings):
    add_device(recipient, "token-1")
    fcm.fail_next(1, 429, "QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED", "Quota exceeded.", retry_after=10**12)

    with pytest.raises(TransientProviderError) as raised:
        backend.send(push_delivery(recipient), PUSH)

    assert raised.value.retry_after == settings.NOTIFIER_MAX_RETRY_AFTER_SECONDS


@pytest.fixture
def push_enabled(settings, fcm, fcm_credentials_file):
    """Push through the worker's pipeline, to the fake FCM."""
    settings.NOTIFIER_CHANNELS = {"push": {
        "BACKEND": "apps.channels.backends.fcm.FcmPushBackend",
        "OPTIONS": {"credentials_file": fcm_credentials_file, "api_base_url": fcm.base_url, "timeout": 5},
        "MAX_ATTEMPTS": 3,
    }}
    backends_reset()
    yield
    backend_get("push").close()
    backends_reset()


def test_after_a_huge_retry_after_no_phone_gets_the_push_twice(push_enabled, fcm, recipient, settings):
    add_device(recipient, "token-phone-aaaaaa")
    add_device(recipient, "token-tablet-bbbbbb")
    delivery = queued_delivery(recipient=recipient, channel="push", parts={"title": "Hi", "body": "b"})
    fcm.fail_next(1, 429, "QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED", "Quota exceeded.", retry_after=10**12)

    delivery_send(delivery_id=str(delivery.id))

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.next_attempt_at <= timezone.now() + timedelta(seconds=settings.NOTIFIER_MAX_RETRY_AFTER_SECONDS)
    # The device that got it is on record, so the retry leaves it out.
    [attempt] = delivery.attempts.all()
    assert sorted(d["outcome"] for d in attempt.provider_response["devices"]) == ["sent", "transient_error"]
    Delivery.objects.filter(id=delivery.id).update(next_attempt_at=timezone.now())

    assert delivery_send(delivery_id=str(delivery.id)).status == DeliveryStatus.SENT

    assert sorted(m["token"] for m in fcm.messages) == ["token-phone-aaaaaa", "token-tablet-bbbbbb"]


def test_a_retry_after_partial_success_sends_only_to_the_devices_not_yet_reached(backend, fcm, recipient):
    add_device(recipient, "token-phone-aaaaaa")
    add_device(recipient, "token-tablet-bbbbbb")
    delivery = push_delivery(recipient)
    fcm.fail_next(1, 503, "UNAVAILABLE", "UNAVAILABLE", "try later")

    with pytest.raises(TransientProviderError) as raised:
        backend.send(delivery, PUSH)
    [reached] = fcm.messages
    # What the pipeline records for the failed attempt; the next attempt reads it back.
    DeliveryAttempt.objects.create(delivery=delivery, number=1, started_at=delivery.created_at,
                                   outcome=AttemptOutcome.TRANSIENT_ERROR, provider_response=raised.value.response)

    result = backend.send(delivery, PUSH)

    tokens = [m["token"] for m in fcm.messages]
    assert sorted(tokens) == ["token-phone-aaaaaa", "token-tablet-bbbbbb"]  # each device once
    assert tokens[0] == reached["token"]
    assert [d["outcome"] for d in result.response["devices"]] == ["sent", "sent"]


def test_wrong_credentials_are_retried_not_failed(fcm, recipient, tmp_path):
    other = FakeFcmServer(project_id=fcm.project_id)  # its key is unknown to `fcm`
    other.write_service_account(tmp_path / "sa.json")
    content = (tmp_path / "sa.json").read_text().replace(other.base_url, fcm.base_url)
    (tmp_path / "sa.json").write_text(content)
    backend = FcmPushBackend(credentials_file=str(tmp_path / "sa.json"), api_base_url=fcm.base_url, timeout=5)
    add_device(recipient, "token-1")

    try:
        with pytest.raises(TransientProviderError):
            backend.send(push_delivery(recipient), PUSH)
    finally:
        backend.close()
    assert fcm.messages == []


def test_configuration_errors_name_the_credentials_problem(tmp_path):
    assert FcmPushBackend(credentials_file=str(tmp_path / "missing.json")).configuration_errors()[0].startswith(
        "FCM_CREDENTIALS_FILE")
    (tmp_path / "other.json").write_text('{"type": "authorized_user"}')
    assert "service-account" in FcmPushBackend(credentials_file=str(tmp_path / "other.json")).configuration_errors()[0]
