"""SMS and push end to end: HTTP API → RabbitMQ → a Celery worker using the real twilio and
firebase-admin SDKs → fake Twilio and FCM servers; then Twilio's signed status callback back
into the web process, as Twilio would send it."""

from datetime import datetime

import pytest

from tests.e2e.conftest import TWILIO_FROM_NUMBER as FROM_NUMBER
from tests.e2e.conftest import notification_when_final
from tests.support.processes import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = "+14155550123"
TEMPLATES = {
    "sms-code": {"channels": {"sms": {"text": "Your code is {{ code }}"}}},
    "shipped": {"channels": {"push": {"title": "Order {{ order }}", "body": "It shipped", "data": {"order": "{{ order }}"}}}},
}


@pytest.fixture
def api(http, worker):
    """The session's web process and worker: every channel is configured, providers are faked."""
    for key, template in TEMPLATES.items():
        assert http.put(f"/api/v1/templates/{key}", json=template).status_code == 201
    return http


def notify(api, to: str, template: str, **data) -> dict:
    """Send, wait until the one delivery is final, and return it (with its notification's id)."""
    response = api.post("/api/v1/notifications", json={"to": to, "template": template, "data": data})
    assert response.status_code == 202, response.text
    notification = notification_when_final(api, response.json()["id"])
    [delivery] = notification["deliveries"]
    return {**delivery, "notification_id": notification["id"]}


def delivery_now(api, delivery: dict) -> dict:
    [current] = api.get(f"/api/v1/notifications/{delivery['notification_id']}").json()["deliveries"]
    return current


def outcomes(delivery: dict) -> list[str]:
    return [a["outcome"] for a in delivery["attempts"]]


# --- SMS ---------------------------------------------------------------------------------------------

@pytest.fixture
def ada(api):
    assert api.put("/api/v1/users/ada", json={"phone": PHONE}).status_code == 201


def test_an_sms_reaches_twilio_and_a_signed_receipt_marks_it_delivered(api, twilio, ada):
    delivery = notify(api, "ada", "sms-code", code="123456")

    assert (delivery["status"], outcomes(delivery)) == ("sent", ["sent"])
    [message] = twilio.messages
    assert (message["To"], message["From"], message["Body"]) == (PHONE, FROM_NUMBER, "Your code is 123456")
    assert delivery["provider_message_id"] == message["sid"]

    assert twilio.send_status_callback(message["sid"], "delivered", signature="forged") == 403
    assert delivery_now(api, delivery)["status"] == "sent"

    assert twilio.send_status_callback(message["sid"], "delivered") == 204
    assert delivery_now(api, delivery)["status"] == "delivered"


def test_a_receipt_that_arrives_before_the_worker_recorded_the_send_is_applied_once_it_has(api, twilio, ada):
    # Twilio calls back while the worker is still waiting for the answer to its create request.
    twilio.receipt_before_reply("delivered")

    delivery = notify(api, "ada", "sms-code", code="123456")

    assert twilio.callback_answers == [204]
    # The worker applies the kept receipt right after it records `sent`.
    delivered = wait_until(lambda: (now := delivery_now(api, delivery))["status"] == "delivered" and now,
                           timeout=10, message="the early receipt to be applied")
    assert outcomes(delivered) == ["sent"]


def test_an_undelivered_receipt_is_shown_with_twilios_error_code(api, twilio, ada):
    delivery = notify(api, "ada", "sms-code", code="1")

    assert twilio.send_status_callback(delivery["provider_message_id"], "undelivered", ErrorCode="30003") == 204

    current = delivery_now(api, delivery)
    assert current["status"] == "undelivered"
    assert current["last_error"]["code"] == "30003"


def test_an_sms_to_a_number_twilio_refuses_fails_after_one_attempt(api, twilio, ada):
    twilio.reject_number(PHONE, 400, 21610, "Attempt to send to unsubscribed recipient")

    delivery = notify(api, "ada", "sms-code", code="1")

    assert (delivery["status"], outcomes(delivery)) == ("failed", ["permanent_error"])
    assert delivery["last_error"]["code"] == "21610"
    assert twilio.attempts == 1


def test_an_sms_twilio_cannot_take_for_now_is_retried_until_sent(api, twilio, ada):
    twilio.fail_next(1, 429, 20429, "Too Many Requests")
    twilio.fail_next(1, 503, 20503, "Service Unavailable")

    delivery = notify(api, "ada", "sms-code", code="1")

    assert (delivery["status"], outcomes(delivery)) == ("sent", ["transient_error", "transient_error", "sent"])
    assert [a["error_code"] for a in delivery["attempts"]] == ["20429", "20503", ""]
    assert len(twilio.messages) == 1


# --- Push --------------------------------------------------------------------------------------------

@pytest.fixture
def bob(api):
    assert api.put("/api/v1/users/bob", json={"name": "Bob"}).status_code == 201
    for token, platform in [("bob-phone-token-aaaaaa", "android"), ("bob-tablet-token-bbbbbb", "ios")]:
        assert api.post("/api/v1/users/bob/devices", json={"token": token, "platform": platform}).status_code == 201


def test_a_push_reaches_every_device_of_the_user(api, fcm, bob):
    delivery = notify(api, "bob", "shipped", order="42")

    assert (delivery["status"], outcomes(delivery)) == ("sent", ["sent"])
    assert sorted(m["token"] for m in fcm.messages) == ["bob-phone-token-aaaaaa", "bob-tablet-token-bbbbbb"]
    assert {(m["notification"]["title"], m["data"]["order"]) for m in fcm.messages} == {("Order 42", "42")}


def test_a_push_to_an_uninstalled_app_fails_once_and_retires_the_token(api, fcm, bob):
    api.delete("/api/v1/users/bob/devices/bob-tablet-token-bbbbbb")
    fcm.unregister_token("bob-phone-token-aaaaaa")

    delivery = notify(api, "bob", "shipped", order="42")

    assert (delivery["status"], outcomes(delivery)) == ("failed", ["permanent_error"])
    assert delivery["last_error"]["code"] == "UNREGISTERED"
    assert [d["active"] for d in api.get("/api/v1/users/bob").json()["devices"]] == [False]
    # With no active device left, the next push is skipped up front.
    response = api.post("/api/v1/notifications", json={"to": "bob", "template": "shipped", "data": {"order": "43"}})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "no_deliverable_channel"


def test_a_push_fcm_throttles_waits_its_retry_after_then_goes_out_once_per_device(api, fcm, bob):
    fcm.fail_next(1, 429, "QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED", "Quota exceeded.", retry_after=2)

    delivery = notify(api, "bob", "shipped", order="42")

    assert (delivery["status"], outcomes(delivery)) == ("sent", ["transient_error", "sent"])
    first, second = (datetime.fromisoformat(a["started_at"]) for a in delivery["attempts"])
    assert (second - first).total_seconds() >= 2
    # One device was throttled, the other took it at once: the retry went to the first alone.
    assert sorted(m["token"] for m in fcm.messages) == ["bob-phone-token-aaaaaa", "bob-tablet-token-bbbbbb"]
    assert fcm.attempts == 3


def test_a_push_fcm_cannot_take_for_now_is_retried_by_us_not_inside_the_sdk(api, fcm, bob):
    api.delete("/api/v1/users/bob/devices/bob-tablet-token-bbbbbb")
    fcm.fail_next(2, 503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.")

    delivery = notify(api, "bob", "shipped", order="42")

    assert (delivery["status"], outcomes(delivery)) == ("sent", ["transient_error", "transient_error", "sent"])
    assert fcm.attempts == 3  # one request per recorded attempt
    assert [m["token"] for m in fcm.messages] == ["bob-phone-token-aaaaaa"]
