"""Workflows on the real stack: web, worker and beat processes, RabbitMQ, PostgreSQL, the real
Twilio and Firebase SDKs against the fake servers, real SMTP. Fallback, escalation, cancel during
a wait, and a digest, each as the user would notice it."""

import time

import pytest
import requests

from tests.e2e.conftest import notification_when_final
from tests.support.processes import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TEMPLATE = {"channels": {
    "push": {"title": "Code", "body": "Your code is {{ code }}"},
    "sms": {"text": "Your code is {{ code }}"},
    "in_app": {"title": "New comment", "body": "{{ code }}"},
    "email": {"subject": "Unread", "text": "Your code is {{ code }}"},
}}
DIGEST = {"channels": {"email": {"subject": "You have {{ event_count }} unread",
                                 "text": "{% for e in events %}[{{ e.n }}]{% endfor %}"}}}


@pytest.fixture
def api(http, worker, beat):
    assert http.put("/api/v1/templates/alert", json=TEMPLATE).status_code == 201
    assert http.put("/api/v1/templates/digest", json=DIGEST).status_code == 201
    return http


def workflow(api, key: str, template: str = "alert", **body) -> None:
    response = api.put(f"/api/v1/workflows/{key}", json={"template": template, **body})
    assert response.status_code == 201, response.text


def start(api, to: str, key: str, **data) -> str:
    response = api.post("/api/v1/notifications", json={"to": to, "workflow": key, "data": {"code": "42", **data}})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def run_when_done(api, notification_id: str, timeout: float) -> dict:
    def done():
        body = api.get(f"/api/v1/notifications/{notification_id}").json()
        ended = body["workflow"]["state"] in ("done", "cancelled")
        return body if ended and body["status"] not in ("pending", "processing") else None

    return wait_until(done, timeout=timeout, message=f"the run of {notification_id} and its deliveries to end")


def test_fallback_sends_the_sms_only_when_the_push_did_not_reach_the_phone(api, fcm, twilio):
    workflow(api, "login", steps=[{"channel": "push"}, {"channel": "sms", "if": "not_delivered"}])
    for user, phone in [("nodevice", "+14155550101"), ("uninstalled", "+14155550102"), ("working", "+14155550103")]:
        assert api.put(f"/api/v1/users/{user}", json={"phone": phone}).status_code == 201
    assert api.post("/api/v1/users/uninstalled/devices", json={"token": "gone-token-aaaaaa", "platform": "android"}
                    ).status_code == 201
    assert api.post("/api/v1/users/working/devices", json={"token": "good-token-bbbbbb", "platform": "android"}
                    ).status_code == 201
    fcm.unregister_token("gone-token-aaaaaa")

    ids = {user: start(api, user, "login") for user in ("nodevice", "uninstalled", "working")}
    runs = {user: run_when_done(api, notification_id, timeout=60) for user, notification_id in ids.items()}

    assert sorted(m["To"] for m in twilio.messages) == ["+14155550101", "+14155550102"], runs
    assert [m["token"] for m in fcm.messages] == ["good-token-bbbbbb"]
    assert [s["state"] for s in runs["working"]["workflow"]["steps"]] == ["done", "skipped"]
    channels = {user: {d["channel"]: d["status"] for d in body["deliveries"]} for user, body in runs.items()}
    assert channels["nodevice"] == {"push": "skipped", "sms": "sent"}
    assert channels["uninstalled"] == {"push": "failed", "sms": "sent"}
    assert channels["working"] == {"push": "sent"}


def test_escalation_emails_only_the_user_who_did_not_read_and_cancel_stops_the_wait(api, smtp, web):
    workflow(api, "escalate", steps=[{"channel": "in_app"}, {"wait": 20}, {"channel": "email", "if": "unread"}])
    tokens = {}
    for user in ("reader", "ignorer", "cancelled"):
        assert api.put(f"/api/v1/users/{user}", json={"email": f"{user}@example.com"}).status_code == 201
        tokens[user] = api.post(f"/api/v1/users/{user}/token").json()["token"]
    started_at = time.monotonic()
    ids = {user: start(api, user, "escalate") for user in tokens}

    # The reader opens the inbox and reads the message within the wait.
    def inbox_of(user):
        return requests.get(f"{web}/api/v1/inbox", headers={"Authorization": f"Bearer {tokens[user]}"},
                            timeout=10).json()["results"]

    [message] = wait_until(lambda: inbox_of("reader"), timeout=15, message="the in-app message")
    assert requests.post(f"{web}/api/v1/inbox/{message['id']}/read",
                         headers={"Authorization": f"Bearer {tokens['reader']}"}, timeout=10).status_code == 200
    wait_until(lambda: inbox_of("cancelled"), timeout=15, message="the in-app message")
    assert api.post(f"/api/v1/notifications/{ids['cancelled']}/cancel").status_code == 200

    wait_until(lambda: smtp.received_for("ignorer@example.com"), timeout=60, message="the escalation email")
    assert 20 <= time.monotonic() - started_at <= 60
    reader = run_when_done(api, ids["reader"], timeout=30)
    assert reader["workflow"]["steps"][2]["state"] == "skipped"
    assert "read" in reader["workflow"]["steps"][2]["reason"]
    time.sleep(6)  # a scan period more: the cancelled run must still send nothing
    assert smtp.received_for("reader@example.com") == [] and smtp.received_for("cancelled@example.com") == []
    cancelled = api.get(f"/api/v1/notifications/{ids['cancelled']}").json()
    assert [s["state"] for s in cancelled["workflow"]["steps"]] == ["done", "cancelled", "cancelled"]
    assert {d["channel"] for d in cancelled["deliveries"]} == {"in_app"}


def test_forty_notifications_within_the_window_arrive_as_one_email_listing_all(api, smtp):
    workflow(api, "comments", template="digest", steps=[{"channel": "email"}], digest={"window": "15s"})
    assert api.put("/api/v1/users/ada", json={"email": "ada@example.com"}).status_code == 201
    ids = [start(api, "ada", "comments", n=n) for n in range(1, 41)]

    [email] = wait_until(lambda: smtp.received_for("ada@example.com"), timeout=60, message="the digest email")
    assert email["Subject"] == "You have 40 unread"
    assert email.get_body(("plain",)).get_content().strip() == "".join(f"[{n}]" for n in range(1, 41))
    runs = {api.get(f"/api/v1/notifications/{i}").json()["workflow"]["run"] for i in ids}
    assert len(runs) == 1
    notification_when_final(api, ids[0])
    time.sleep(6)
    assert len(smtp.received_for("ada@example.com")) == 1
