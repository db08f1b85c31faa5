"""One notification on every channel: email, SMS, push, in-app and webhook, through one worker.

The user has an email address, a phone and two devices; the project has a signed webhook. Each
provider must receive exactly one message per address or device, and the API must show every
delivery `sent`.
"""

import pytest

from tests.e2e.conftest import notification_when_final

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TEMPLATE = {"channels": {
    "email": {"subject": "Order {{ order }} shipped", "text": "Your order {{ order }} is on its way."},
    "sms": {"text": "Order {{ order }} shipped"},
    "push": {"title": "Order {{ order }}", "body": "It shipped", "data": {"order": "{{ order }}"}},
    "in_app": {"title": "Order {{ order }} shipped", "body": "Track it in your account.", "url": "/orders/{{ order }}"},
    "webhook": {"event": "order.shipped", "order": "{{ order }}"},
}}


def test_one_notification_reaches_every_channel_once_per_address_and_device(
        http, worker, smtp, twilio, fcm, receiver):
    assert http.patch("/api/v1/project", json={"webhook_url": receiver.url,
                                               "webhook_secret": "whsec_all"}).status_code == 200
    assert http.put("/api/v1/users/ada", json={"email": "ada@example.com", "phone": "+14155550123"}).status_code == 201
    for token, platform in [("token-phone-aaaa", "android"), ("token-tablet-bbbb", "ios")]:
        assert http.post("/api/v1/users/ada/devices", json={"token": token, "platform": platform}).status_code == 201
    assert http.put("/api/v1/templates/shipped", json=TEMPLATE).status_code == 201

    response = http.post("/api/v1/notifications", json={"to": "ada", "template": "shipped", "data": {"order": "A-17"}})
    assert response.status_code == 202, response.text
    assert sorted(d["channel"] for d in response.json()["deliveries"]) == ["email", "in_app", "push", "sms", "webhook"]

    notification = notification_when_final(http, response.json()["id"])
    assert notification["status"] == "sent"
    assert {d["channel"]: d["status"] for d in notification["deliveries"]} == {
        "email": "sent", "sms": "sent", "push": "sent", "in_app": "sent", "webhook": "sent"}
    assert all(len(d["attempts"]) == 1 for d in notification["deliveries"])

    [mail] = smtp.received_for("ada@example.com")
    assert mail["Subject"] == "Order A-17 shipped"
    assert [(m["To"], m["Body"]) for m in twilio.messages] == [("+14155550123", "Order A-17 shipped")]
    assert sorted(m["token"] for m in fcm.messages) == ["token-phone-aaaa", "token-tablet-bbbb"]
    [hook] = receiver.wait_for_requests(1)
    assert hook.json()["data"] == {"event": "order.shipped", "order": "A-17"}

    token = http.post("/api/v1/users/ada/token").json()["token"]
    inbox = http.get("/api/v1/inbox", headers={"Authorization": f"Bearer {token}"}).json()
    assert [(m["title"], m["url"]) for m in inbox["results"]] == [("Order A-17 shipped", "/orders/A-17")]
