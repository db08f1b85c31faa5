"""The first real path: HTTP API → PostgreSQL → RabbitMQ → Celery worker → SMTP → status."""

import pytest

from apps.channels.backends.email import DELIVERY_ID_HEADER
from tests.e2e.conftest import notification_when_final

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_email_sent_through_the_api_reaches_the_smtp_server_and_reads_sent(http, worker, smtp):
    assert http.put("/api/v1/users/ada", json={"email": "ada@example.com", "name": "Ada"}).status_code == 201
    template = {"channels": {"email": {"subject": "Your code, {{ name }}", "text": "Code: {{ code }}",
                                       "html": "<p>Code: <b>{{ code }}</b> for {{ name }}</p>"}}}
    assert http.put("/api/v1/templates/login-code", json=template).status_code == 201

    response = http.post("/api/v1/notifications",
                         json={"to": "ada", "template": "login-code", "data": {"code": "123456", "name": "<Ada>"}})
    assert response.status_code == 202, response.text
    created = response.json()
    assert [(d["channel"], d["status"]) for d in created["deliveries"]] == [("email", "queued")]

    notification = notification_when_final(http, created["id"])
    assert notification["status"] == "sent"
    [delivery] = notification["deliveries"]
    assert delivery["status"] == "sent"
    assert [a["outcome"] for a in delivery["attempts"]] == ["sent"]

    [message] = smtp.received_for("ada@example.com")
    assert message["Subject"] == "Your code, <Ada>"
    assert message[DELIVERY_ID_HEADER] == delivery["id"]
    assert message.get_body(("plain",)).get_content().strip() == "Code: 123456"
    # HTML parts are autoescaped: the caller's data cannot inject markup.
    assert "<p>Code: <b>123456</b> for &lt;Ada&gt;</p>" in message.get_body(("html",)).get_content()
    assert delivery["provider_message_id"] == message["Message-ID"]


def test_many_notifications_each_reach_the_smtp_server_once(http, worker, smtp):
    http.put("/api/v1/templates/hello", json={"channels": {"email": {"subject": "Hi {{ n }}", "text": "Hello"}}})
    ids = []
    for n in range(40):
        http.put(f"/api/v1/users/u{n}", json={"email": f"u{n}@example.com"})
        ids.append(http.post("/api/v1/notifications", json={"to": f"u{n}", "template": "hello", "data": {"n": n}}).json()["id"])

    statuses = [notification_when_final(http, notification_id)["status"] for notification_id in ids]

    assert statuses == ["sent"] * 40
    assert sorted(m["To"] for m in smtp.messages) == sorted(f"u{n}@example.com" for n in range(40))
