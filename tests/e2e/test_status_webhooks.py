"""Status webhooks through the real path: a status change (API, worker, Twilio's receipt, the sweep)
→ the outbox row → RabbitMQ (notifications.status_webhook) → a worker → a local receiving server."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from apps.notifications.intake.services import notification_cancel
from apps.notifications.models import StatusEvent
from apps.projects.models import Project
from tests.e2e.conftest import notification_when_final
from tests.fakes.webhook import Reply, WebhookReceiver
from tests.support.processes import wait_until
from tests.support.standard_webhooks import STATUS_WEBHOOK, standard_webhook_verified

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "whsec_status_e2e_7c41"
PHONE, UNREACHABLE_PHONE = "+14155550123", "+14155550199"
TEMPLATES = {
    "code": {"channels": {"sms": {"text": "Your code is {{ code }}"}, "email": {"subject": "Code", "text": "{{ code }}"}}},
    "invoice": {"channels": {"webhook": {"invoice": "{{ invoice }}"}}},
}


@pytest.fixture
def api(http, worker, beat, receiver):
    """The project reports status changes to the fake receiver; two users, one without a phone."""
    response = http.patch("/api/v1/project", json={"status_webhook_url": receiver.url, "webhook_secret": SECRET})
    assert response.status_code == 200, response.text
    for key, template in TEMPLATES.items():
        assert http.put(f"/api/v1/templates/{key}", json=template).status_code == 201
    assert http.put("/api/v1/users/ada", json={"phone": PHONE, "email": "ada@example.com"}).status_code == 201
    assert http.put("/api/v1/users/bob", json={"email": "bob@example.com"}).status_code == 201
    assert http.put("/api/v1/users/eve", json={"phone": UNREACHABLE_PHONE}).status_code == 201
    return http


def notify(api, **body) -> dict:
    response = api.post("/api/v1/notifications", json={"template": "code", "data": {"code": "4711"}, **body})
    assert response.status_code == 202, response.text
    return response.json()


def verified(request) -> bool:
    """The receiver's check, as docs/api.md describes it: the Standard Webhooks library, the status key."""
    return standard_webhook_verified(request, secret=SECRET, purpose=STATUS_WEBHOOK)


def events_by_delivery(requests) -> dict[str, list[dict]]:
    """What a receiver keeps: each event once (by its id), ordered by sequence within a delivery."""
    unique = {}
    for request in requests:
        assert verified(request)
        body = request.json()
        assert request.headers["webhook-id"] == request.headers["X-Notifier-Event-Id"] == body["id"]
        unique[body["id"]] = body
    by_delivery = defaultdict(list)
    for body in unique.values():
        by_delivery[body["delivery_id"]].append(body)
    return {d: sorted(events, key=lambda e: e["sequence"]) for d, events in by_delivery.items()}


def wait_for_events(receiver, count: int, timeout: float = 30) -> dict[str, list[dict]]:
    return wait_until(lambda: (found := events_by_delivery(receiver.requests))
                      and sum(map(len, found.values())) >= count and found,
                      timeout=timeout, message=f"{count} distinct status events")


def statuses(events: list[dict]) -> list[tuple]:
    return [(e["sequence"], e["previous_status"], e["status"]) for e in events]


def test_every_transition_of_a_delivery_is_posted_signed_and_in_sequence(api, receiver, twilio):
    twilio.reject_number(UNREACHABLE_PHONE)
    sms = notify(api, to="ada", channels=["sms"])
    skipped = notify(api, to="bob", channels=["email", "sms"])  # bob has no phone
    failed = notify(api, to="eve", channels=["sms"])
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    cancelled = notify(api, to="ada", channels=["email"], send_at=later)
    for notification in (sms, skipped, failed):
        notification_when_final(api, notification["id"])
    assert api.post(f"/api/v1/notifications/{cancelled['id']}/cancel").status_code == 200
    [message] = [m for m in twilio.messages if m["To"] == PHONE]
    assert twilio.send_status_callback(message["sid"], "delivered") == 204

    events = wait_for_events(receiver, 6)

    def of(notification, channel):
        [delivery] = [d for d in notification["deliveries"] if d["channel"] == channel]
        return events[delivery["id"]]

    assert statuses(of(sms, "sms")) == [(1, "sending", "sent"), (2, "sent", "delivered")]
    assert statuses(of(skipped, "email")) == [(1, "sending", "sent")]
    [skip] = of(skipped, "sms")
    assert (skip["sequence"], skip["previous_status"], skip["status"]) == (1, None, "skipped")
    assert skip["skip_reason"]
    [fail] = of(failed, "sms")
    assert (fail["status"], fail["error_code"]) == ("failed", "21211")
    assert statuses(of(cancelled, "email")) == [(1, "pending", "cancelled")]
    first = of(sms, "sms")[0]
    assert first["type"] == "delivery.status_changed" and first["notification_id"] == sms["id"]
    assert first["channel"] == "sms" and first["to"] == "ada" and first["occurred_at"].endswith("Z")
    assert all(e["status"] not in ("queued", "sending", "retrying") for es in events.values() for e in es)


@pytest.mark.timeout(180)  # every retry of a delivery, up to 90 s
def test_a_delivery_whose_retries_run_out_is_reported_dead(api, receiver, project):
    with WebhookReceiver() as channel_receiver:  # the webhook channel's receiver, down for good
        # Through the API, as a product backend would: the web process then reads the project anew.
        assert api.patch("/api/v1/project", json={"webhook_url": channel_receiver.url}).status_code == 200
        channel_receiver.reply_with(*[Reply(503)] * 20)
        notification = api.post("/api/v1/notifications", json={"to": "bob", "template": "invoice",
                                                                "data": {"invoice": "INV-9"}}).json()
        final = notification_when_final(api, notification["id"], timeout=90)

    [delivery] = final["deliveries"]
    assert delivery["status"] == "dead"
    [event] = wait_for_events(receiver, 1)[delivery["id"]]
    assert (event["previous_status"], event["status"], event["error_code"]) == ("sending", "dead", "503")


def test_events_survive_a_failing_receiver_and_arrive_once_it_recovers(api, receiver, twilio):
    receiver.reply_with(*[Reply(503)] * 5, Reply(500, headers={"Retry-After": "1"}))
    notifications = [notify(api, to="ada", channels=["sms"]) for _ in range(3)]
    for notification in notifications:
        notification_when_final(api, notification["id"])
    for message in twilio.messages:
        assert twilio.send_status_callback(message["sid"], "delivered") == 204

    # Each event is retried until the receiver takes it, and its row says so.
    rows = wait_until(lambda: (rows := list(StatusEvent.objects.all())) and len(rows) == 6
                      and all(r.status == "sent" for r in rows) and rows, timeout=60, message="every event sent")
    assert sum(r.attempts for r in rows) >= 6 + 6

    events = events_by_delivery(receiver.requests)
    for notification in notifications:
        [delivery] = notification["deliveries"]
        assert statuses(events[delivery["id"]]) == [(1, "sending", "sent"), (2, "sent", "delivered")]
    # The first six requests were refused: every event still reached the receiver after them.
    assert {r.json()["id"] for r in receiver.requests[6:]} == {str(r.id) for r in rows}


def test_an_event_whose_publish_was_lost_is_posted_by_the_sweep(api, receiver, project, settings):
    settings.NOTIFIER_QUEUED_TIMEOUT_SECONDS = 1  # this process writes the event: presumed lost after 1 s
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    notification = notify(api, to="ada", channels=["email"], send_at=later)

    with transaction.atomic():
        notification_cancel(project=Project.objects.get(pk=project.pk), notification_id=notification["id"])
        # The process dies between the commit and the publish: the row is there, no message is.
        connection.run_on_commit.clear()
    [event] = StatusEvent.objects.all()
    assert event.status == "pending"

    [received] = wait_for_events(receiver, 1, timeout=30).values()
    assert [e["id"] for e in received] == [str(event.id)]
    assert received[0]["status"] == "cancelled"
