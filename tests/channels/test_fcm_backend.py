"""The FCM push backend through the real `firebase-admin` SDK, against a fake FCM (and its OAuth
token endpoint) on loopback."""

import warnings
from dataclasses import replace
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.channels.backends.fcm import PAYLOAD_LIMIT_BYTES, FcmPushBackend
from apps.channels.base import DeactivateDevice, PermanentProviderError, TransientProviderError
from apps.channels.registry import backend_get, backends_reset
from apps.notifications.delivery.sending import deliveries_send, delivery_send
from apps.notifications.models import Delivery, DeliveryStatus
from apps.users.models import Device
from tests.channels.messages import message_for, push_device
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


def push(*devices, content=PUSH, **fields):
    """A push message to these (active) devices."""
    return message_for("push", content, devices=devices, **fields)


def test_a_push_goes_to_every_device_of_the_message(backend, fcm):
    result = backend.send(push(push_device("token-phone-aaaaaa", "android"), push_device("token-tablet-bbbbbb", "ios")))

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


def test_data_values_are_sent_as_strings(backend, fcm):
    backend.send(push(push_device("token-1"), content={"title": "t", "body": "b", "data": {"count": 3, "flag": True}}))

    assert fcm.messages[0]["data"] == {"count": "3", "flag": "True"}


def test_registration_tokens_go_out_as_tokens_without_deprecation_noise(backend, fcm):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        backend.send(push(push_device("token-1")))

    assert "token" in fcm.messages[0] and "fid" not in fcm.messages[0]


def test_an_unregistered_token_is_to_be_deactivated_and_the_other_devices_still_get_it(backend, fcm):
    gone = push_device("token-uninstalled-111111")
    fcm.unregister_token(gone.token)

    result = backend.send(push(gone, push_device("token-phone-222222")))

    assert [m["token"] for m in fcm.messages] == ["token-phone-222222"]
    assert {d["token_suffix"]: d["outcome"] for d in result.response["devices"]} == {
        "111111": "unregistered", "222222": "sent"}
    assert result.actions == (DeactivateDevice(device_id=gone.id),)


def test_when_every_device_is_unregistered_the_push_fails_permanently(backend, fcm):
    gone = push_device("token-uninstalled-111111")
    fcm.unregister_token(gone.token)

    with pytest.raises(PermanentProviderError) as raised:
        backend.send(push(gone))

    assert raised.value.code == "UNREGISTERED"
    assert raised.value.actions == (DeactivateDevice(device_id=gone.id),)


@pytest.mark.parametrize(
    ("http_status", "fcm_code", "status_name"),
    [(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"), (403, "SENDER_ID_MISMATCH", "PERMISSION_DENIED")],
)
def test_fcm_refusing_the_message_is_a_permanent_error(backend, fcm, http_status, fcm_code, status_name):
    fcm.fail_next(1, http_status, fcm_code, status_name, "refused")

    with pytest.raises(PermanentProviderError) as raised:
        backend.send(push(push_device("token-1")))

    assert raised.value.code == fcm_code
    assert raised.value.response["devices"][0]["outcome"] == "permanent_error"
    assert raised.value.actions == ()  # only UNREGISTERED retires a token


def test_a_payload_over_fcms_limit_fails_before_anything_is_sent(backend, fcm):
    content = {"title": "t", "body": "b", "data": {"blob": "x" * PAYLOAD_LIMIT_BYTES}}

    with pytest.raises(PermanentProviderError) as raised:
        backend.send(push(push_device("token-1"), content=content))

    assert raised.value.code == "payload_too_large"
    assert fcm.attempts == 0


def test_a_payload_just_under_the_limit_goes_out(backend, fcm):
    content = {"title": "t", "body": "b", "data": {"blob": ""}}
    overhead = len('{"notification":{"title":"t","body":"b"},"data":{"blob":""}}')
    content["data"]["blob"] = "é" * ((PAYLOAD_LIMIT_BYTES - overhead) // 2)  # two bytes each in UTF-8

    backend.send(push(push_device("token-1"), content=content))

    assert len(fcm.messages) == 1


def test_a_user_without_active_devices_fails_permanently(backend, fcm):
    with pytest.raises(PermanentProviderError) as raised:
        backend.send(push())

    assert raised.value.code == "no_active_device"
    assert fcm.attempts == 0


@pytest.mark.parametrize(
    ("http_status", "fcm_code", "status_name"),
    [(503, "UNAVAILABLE", "UNAVAILABLE"), (500, "INTERNAL", "INTERNAL")],
)
def test_server_errors_are_transient_and_not_retried_inside_the_sdk(backend, fcm, http_status, fcm_code,
                                                                    status_name):
    fcm.fail_next(1, http_status, fcm_code, status_name, "try later")

    with pytest.raises(TransientProviderError) as raised:
        backend.send(push(push_device("token-1")))

    assert raised.value.code == fcm_code
    assert raised.value.retry_after is None
    # One request per attempt: firebase-admin's own 500/503 retries are off (see fcm.py).
    assert fcm.attempts == 1


def test_quota_exceeded_is_transient_and_carries_fcms_retry_after(backend, fcm):
    fcm.fail_next(1, 429, "QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED", "Quota exceeded.", retry_after=7)

    with pytest.raises(TransientProviderError) as raised:
        backend.send(push(push_device("token-1")))

    assert (raised.value.code, raised.value.retry_after) == ("QUOTA_EXCEEDED", 7.0)
    assert fcm.attempts == 1


def test_a_huge_retry_after_is_capped(backend, fcm, settings):
    fcm.fail_next(1, 429, "QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED", "Quota exceeded.", retry_after=10**12)

    with pytest.raises(TransientProviderError) as raised:
        backend.send(push(push_device("token-1")))

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


def test_a_retry_after_partial_success_sends_only_to_the_devices_not_yet_reached(backend, fcm):
    message = push(push_device("token-phone-aaaaaa"), push_device("token-tablet-bbbbbb"))
    fcm.fail_next(1, 503, "UNAVAILABLE", "UNAVAILABLE", "try later")

    with pytest.raises(TransientProviderError) as raised:
        backend.send(message)
    [reached] = fcm.messages
    # What the pipeline hands the next attempt from the failed attempt's record.
    earlier = {d["device_id"]: d for d in raised.value.response["devices"] if d["outcome"] == "sent"}

    result = backend.send(replace(message, devices_reached=earlier))

    tokens = [m["token"] for m in fcm.messages]
    assert sorted(tokens) == ["token-phone-aaaaaa", "token-tablet-bbbbbb"]  # each device once
    assert tokens[0] == reached["token"]
    assert [d["outcome"] for d in result.response["devices"]] == ["sent", "sent"]


def test_wrong_credentials_are_retried_not_failed(fcm, tmp_path):
    other = FakeFcmServer(project_id=fcm.project_id)  # its key is unknown to `fcm`
    other.write_service_account(tmp_path / "sa.json")
    content = (tmp_path / "sa.json").read_text().replace(other.base_url, fcm.base_url)
    (tmp_path / "sa.json").write_text(content)
    backend = FcmPushBackend(credentials_file=str(tmp_path / "sa.json"), api_base_url=fcm.base_url, timeout=5)

    try:
        with pytest.raises(TransientProviderError):
            backend.send(push(push_device("token-1")))
    finally:
        backend.close()
    assert fcm.messages == []


def test_configuration_errors_name_the_credentials_problem(tmp_path):
    assert FcmPushBackend(credentials_file=str(tmp_path / "missing.json")).configuration_errors()[0].startswith(
        "FCM_CREDENTIALS_FILE")
    (tmp_path / "other.json").write_text('{"type": "authorized_user"}')
    assert "service-account" in FcmPushBackend(credentials_file=str(tmp_path / "other.json")).configuration_errors()[0]


def test_the_pipeline_pushes_to_active_devices_only_and_deactivates_an_unregistered_one(push_enabled, fcm, recipient):
    gone = add_device(recipient, "token-uninstalled-111111")
    add_device(recipient, "token-phone-222222")
    add_device(recipient, "token-old-333333", active=False)
    fcm.unregister_token(gone.token)
    delivery = queued_delivery(recipient=recipient, channel="push", parts={"title": "Hi", "body": "b"})

    assert delivery_send(delivery_id=str(delivery.id)).status == DeliveryStatus.SENT

    assert [m["token"] for m in fcm.messages] == ["token-phone-222222"]
    gone.refresh_from_db()
    assert gone.active is False
    assert Device.objects.filter(active=True).count() == 1


def test_a_batch_of_pushes_loads_devices_and_earlier_attempts_once_not_per_delivery(push_enabled, fcm):
    def pushes(count: int) -> list[str]:
        ids = []
        for _ in range(count):
            recipient = RecipientFactory()
            add_device(recipient, f"token-{recipient.id}")
            ids.append(str(queued_delivery(recipient=recipient, channel="push", parts={"title": "Hi", "body": "b"}).id))
        return ids

    one, many = pushes(1), pushes(5)
    with CaptureQueriesContext(connection) as single:
        deliveries_send(delivery_ids=one)
    with CaptureQueriesContext(connection) as batch:
        result = deliveries_send(delivery_ids=many)

    assert {o.status for o in result.outcomes.values()} == {DeliveryStatus.SENT}
    assert len(fcm.messages) == 6
    assert len(batch.captured_queries) == len(single.captured_queries)
