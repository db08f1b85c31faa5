"""Status webhooks: the outbox written with each status change, and posting its events.

These run in one process against PostgreSQL and the fake receiver; tests/e2e/test_status_webhooks.py
runs the same through the web process, RabbitMQ, workers and beat.
"""

import random
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.channels.base import TransientProviderError
from apps.channels.shares import STATUS_WEBHOOK_SHARE, project_send_lease
from apps.core.models import OperatorAuditEntry
from apps.notifications.delivery.receipts import delivery_report_receipt
from apps.notifications.delivery.sending import deliveries_send
from apps.notifications.delivery.sweep import deliveries_sweep
from apps.notifications.intake.services import notification_cancel
from apps.notifications.models import DeliveryStatus, StatusEvent, StatusEventStatus
from apps.notifications.outbox.status_events import status_event_messages
from apps.notifications.status_webhooks.posting import status_events_send, status_events_sweep
from apps.projects.services import project_update
from tests.fakes.webhook import Reply
from tests.notifications.factories import DeliveryFactory
from tests.projects.factories import ProjectFactory
from tests.support.standard_webhooks import (
    STATUS_WEBHOOK,
    WEBHOOK,
    legacy_signature_verified,
    standard_webhook_verified,
)

pytestmark = pytest.mark.django_db

SECRET = "whsec_status_5f2a"


@pytest.fixture
def hooked(receiver):
    """A project whose status_webhook_url is the fake receiver."""
    return ProjectFactory(status_webhook_url=receiver.url, webhook_secret=SECRET)


def verified(request) -> bool:
    """The receiver's check (docs/api.md, Signatures): the Standard Webhooks library, the status key."""
    return standard_webhook_verified(request, secret=SECRET, purpose=STATUS_WEBHOOK)


def post(event) -> str | None:
    """What a worker does with the event's message; the event's status after, None if not claimed."""
    return status_events_send(event_ids=[str(event.id)]).statuses.get(str(event.id))


def cancel(delivery):
    return notification_cancel(project=delivery.notification.project, notification_id=delivery.notification_id)


def statusevent_inserts(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith('INSERT INTO "notifications_statusevent"')]


# --- The outbox is written with the change, in its transaction ---------------------------------------

def test_a_rolled_back_status_change_leaves_no_event(hooked):
    delivery = DeliveryFactory(notification__project=hooked)

    with pytest.raises(RuntimeError), transaction.atomic():
        cancel(delivery)
        assert StatusEvent.objects.filter(delivery=delivery, delivery_status="cancelled").count() == 1
        raise RuntimeError("the request failed after the cancel")

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.QUEUED
    assert not StatusEvent.objects.exists()


def test_an_outbox_write_that_fails_leaves_the_send_unrecorded_for_the_sweep(hooked, scripted):
    """The email path records a batch in one transaction: if its events cannot be written, neither
    are the statuses (the deliveries stay `sending`, the sweep's to take back)."""
    deliveries = [DeliveryFactory(notification__project=hooked) for _ in range(3)]
    with connection.cursor() as cursor:  # the database refuses the outbox rows
        cursor.execute("""
            CREATE FUNCTION refuse_status_events() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'outbox unavailable'; END $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_status_events BEFORE INSERT ON notifications_statusevent
            FOR EACH ROW EXECUTE FUNCTION refuse_status_events();
        """)

    deliveries_send(delivery_ids=[str(d.id) for d in deliveries])

    assert len(scripted.accepted) == 3  # the provider has them...
    for delivery in deliveries:
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.SENDING  # ...but no status was recorded without its event
        assert not delivery.attempts.exists()
    assert not StatusEvent.objects.exists()


def test_a_batch_writes_its_events_with_one_insert(hooked, scripted):
    deliveries = [DeliveryFactory(notification__project=hooked) for _ in range(20)]

    with CaptureQueriesContext(connection) as queries:
        deliveries_send(delivery_ids=[str(d.id) for d in deliveries])

    assert len(statusevent_inserts(queries.captured_queries)) == 1
    events = StatusEvent.objects.filter(delivery__in=deliveries)
    assert sorted((e.delivery_status, e.previous_status, e.sequence, e.status) for e in events) == [
        ("sent", "sending", 1, "pending")] * 20


def test_a_project_without_a_status_webhook_url_costs_no_outbox_query(scripted):
    deliveries = [DeliveryFactory() for _ in range(20)]

    with CaptureQueriesContext(connection) as queries:
        deliveries_send(delivery_ids=[str(d.id) for d in deliveries])

    assert not [q for q in queries.captured_queries if "notifications_statusevent" in q["sql"]]
    assert not StatusEvent.objects.exists()


def test_events_of_one_delivery_are_numbered_in_order(hooked, scripted):
    delivery = DeliveryFactory(notification__project=hooked, channel="email")
    deliveries_send(delivery_ids=[str(delivery.id)])
    delivery.refresh_from_db()

    delivery_report_receipt(channel="email", provider_message_id=delivery.provider_message_id, delivered=False,
                            error_code="30003")

    events = list(StatusEvent.objects.filter(delivery=delivery).order_by("sequence"))
    assert [(e.sequence, e.previous_status, e.delivery_status, e.error_code) for e in events] == [
        (1, "sending", "sent", ""), (2, "sent", "undelivered", "30003")]


def test_retrying_is_not_reported_and_dead_is(hooked, scripted):
    delivery = DeliveryFactory(notification__project=hooked, budget_attempts=1)  # 2 of 3 at the claim
    scripted.script.append(TransientProviderError("busy", code="451"))
    deliveries_send(delivery_ids=[str(delivery.id)])
    assert not StatusEvent.objects.exists()

    delivery.refresh_from_db()
    delivery.next_attempt_at = None
    delivery.save(update_fields=["next_attempt_at"])
    scripted.script.append(TransientProviderError("busy", code="451"))
    deliveries_send(delivery_ids=[str(delivery.id)])

    [event] = StatusEvent.objects.all()
    assert (event.delivery_status, event.previous_status, event.error_code) == ("dead", "sending", "451")


def test_what_the_sweep_ends_is_reported(hooked, outbox):
    """A worker lost mid-send with a cancel pending ends `cancelled`; a delivery on a channel
    turned off ends `dead` (channel_disabled): both reported, with the status each left."""
    overdue = timezone.now() - timedelta(seconds=1)
    lost = DeliveryFactory(notification__project=hooked, status=DeliveryStatus.SENDING, attempt_count=1,
                           recheck_at=overdue, cancel_requested_at=overdue)
    disabled = DeliveryFactory(notification__project=hooked, channel="push", recheck_at=overdue)

    deliveries_sweep()

    events = {e.delivery_id: e for e in StatusEvent.objects.all()}
    assert (events[lost.id].previous_status, events[lost.id].delivery_status) == ("sending", "cancelled")
    assert (events[disabled.id].previous_status, events[disabled.id].delivery_status,
            events[disabled.id].error_code) == ("queued", "dead", "channel_disabled")


# --- Posting the events -----------------------------------------------------------------------------

def test_an_event_is_posted_signed_with_its_id_and_sequence(hooked, receiver):
    delivery = DeliveryFactory(notification__project=hooked, channel="sms")
    cancel(delivery)
    [event] = StatusEvent.objects.all()

    assert post(event) == StatusEventStatus.SENT

    [request] = receiver.requests
    assert verified(request)
    assert request.headers["webhook-id"] == request.headers["X-Notifier-Event-Id"] == str(event.id)
    # Not a webhook's signature: replayed to the project's webhook receiver, it does not verify.
    assert not standard_webhook_verified(request, secret=SECRET, purpose=WEBHOOK)
    assert legacy_signature_verified(request, secret=SECRET)  # deprecated, sent for one release
    body = request.json()
    assert body == {
        "id": str(event.id), "type": "delivery.status_changed", "sequence": 1,
        "occurred_at": body["occurred_at"], "delivery_id": str(delivery.id),
        "notification_id": str(delivery.notification_id), "channel": "sms", "status": "cancelled",
        "previous_status": "queued", "error_code": None, "skip_reason": None, "to": delivery.notification.to,
        "correlation_id": None,
    }
    # A duplicate message (at-least-once) posts nothing more.
    assert post(event) is None
    assert len(receiver.requests) == 1


def test_while_the_secret_is_rotated_an_event_verifies_with_either_secret(hooked, receiver):
    project_update(project=hooked, webhook_secret="whsec_status_next")
    delivery = DeliveryFactory(notification__project=hooked, channel="sms")
    cancel(delivery)

    assert post(StatusEvent.objects.get()) == StatusEventStatus.SENT

    [request] = receiver.requests
    assert verified(request)  # the receiver not switched yet
    assert standard_webhook_verified(request, secret="whsec_status_next", purpose=STATUS_WEBHOOK)


def test_a_failing_receiver_is_retried_then_the_event_is_dead(hooked, receiver, settings):
    settings.NOTIFIER_STATUS_WEBHOOK_MAX_ATTEMPTS = 2
    cancel(DeliveryFactory(notification__project=hooked))
    [event] = StatusEvent.objects.all()
    receiver.reply_with(Reply(503), Reply(500))

    first = status_events_send(event_ids=[str(event.id)])
    assert first.statuses == {str(event.id): StatusEventStatus.RETRYING}
    [(_, _, countdown)] = first.retries
    assert countdown > 0
    StatusEvent.objects.filter(id=event.id).update(next_attempt_at=None)  # its countdown has run
    assert post(event) == StatusEventStatus.DEAD

    event.refresh_from_db()
    assert (event.status, event.attempts, event.last_error_code) == ("dead", 2, "500")


def test_a_receiver_refusing_the_event_fails_it_at_once(hooked, receiver):
    cancel(DeliveryFactory(notification__project=hooked))
    [event] = StatusEvent.objects.all()
    receiver.reply_with(Reply(410))

    assert post(event) == StatusEventStatus.FAILED
    assert len(receiver.requests) == 1


def test_a_lost_publish_is_recovered_by_the_sweep(hooked, receiver, settings, django_capture_on_commit_callbacks):
    settings.NOTIFIER_QUEUED_TIMEOUT_SECONDS = 0  # presumed lost at once
    # In this test's transaction nothing is ever committed, so the publish after commit never
    # happens: the event is written and its message lost.
    cancel(DeliveryFactory(notification__project=hooked))
    [event] = StatusEvent.objects.all()
    assert receiver.requests == []

    with django_capture_on_commit_callbacks() as published:
        assert status_events_sweep() == 1
    assert len(published) == 1  # the sweep publishes it again once its batch commits

    post(event)  # what the worker does with that message
    [request] = receiver.requests
    assert request.json()["id"] == str(event.id)


def test_a_message_carries_up_to_a_hundred_events_of_one_project():
    events = [(f"a{n}", 1) for n in range(245)] + [(f"b{n}", 2) for n in range(3)]

    messages = status_event_messages(events)

    assert [len(ids) for ids in messages] == [100, 100, 45, 3]
    assert {ids[0][0] for ids in messages} == {"a", "b"} and all(len({i[0] for i in ids}) == 1 for ids in messages)


def test_once_a_receiver_fails_the_rest_of_its_message_waits(hooked, receiver):
    for _ in range(3):
        cancel(DeliveryFactory(notification__project=hooked))
    events = [str(e.id) for e in StatusEvent.objects.order_by("occurred_at")]
    receiver.reply_with(Reply(200), Reply(503))

    result = status_events_send(event_ids=events)

    assert result.statuses == {events[0]: "sent", events[1]: "retrying"}
    assert result.deferred == [(events[2], hooked.id)] and result.defer_by > 0
    assert len(receiver.requests) == 2  # the third was not sent to a receiver that just failed
    assert StatusEvent.objects.get(id=events[2]).status == "pending"


# --- Fairness -------------------------------------------------------------------------------------------

@pytest.fixture
def shares(redis_for_run):
    redis_for_run.NOTIFIER_STATUS_WEBHOOK_PROJECT_MAX_CONCURRENCY = 1
    return redis_for_run


def test_a_project_whose_receiver_holds_its_share_does_not_stall_another_project(shares, receiver):
    hung = ProjectFactory(id=random.randrange(10**9, 10**10), status_webhook_url=receiver.url, webhook_secret=SECRET)
    other = ProjectFactory(id=random.randrange(10**9, 10**10), status_webhook_url=receiver.url, webhook_secret=SECRET)
    cancel(DeliveryFactory(notification__project=hung))
    cancel(DeliveryFactory(notification__project=other))
    hung_event = StatusEvent.objects.get(project=hung)
    other_event = StatusEvent.objects.get(project=other)

    # A post of the hung project is in flight (its receiver does not answer): its share is taken.
    with project_send_lease(channel=STATUS_WEBHOOK_SHARE, project_id=hung.id) as held:
        assert held
        deferred = status_events_send(event_ids=[str(hung_event.id)])
        posted = post(other_event)

    assert deferred.defer_by is not None and deferred.statuses == {}
    assert deferred.deferred == [(str(hung_event.id), hung.id)]
    hung_event.refresh_from_db()
    assert (hung_event.status, hung_event.attempts) == ("pending", 0)  # not claimed: no attempt spent
    assert posted == StatusEventStatus.SENT
    assert [r.json()["id"] for r in receiver.requests] == [str(other_event.id)]


# --- The admin ----------------------------------------------------------------------------------------

def test_the_admin_replays_failed_events_after_a_confirmation(hooked, receiver, admin_client):
    cancel(DeliveryFactory(notification__project=hooked))
    [event] = StatusEvent.objects.all()
    receiver.reply_with(Reply(404))
    post(event)
    url = reverse("admin:notifications_statusevent_changelist")

    listing = admin_client.get(url, {"status__exact": "failed"}).content.decode()
    assert "The status webhook answered HTTP 404." in listing and str(event.delivery_id) in listing

    form = {"action": "replay", "_selected_action": [str(event.id)]}
    confirmation = admin_client.post(url, form)
    assert confirmation.status_code == 200 and "Post 1 status webhook event to" in confirmation.content.decode()
    event.refresh_from_db()
    assert event.status == "failed"  # nothing happens before the operator confirms

    admin_client.post(url, {**form, "confirmed": "yes"})
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("pending", 0)
    [entry] = OperatorAuditEntry.objects.filter(action="status_events.replay")
    assert (entry.count, entry.actor_label, entry.details["ids"]) == (1, "admin", [str(event.id)])
    assert post(event) == StatusEventStatus.SENT
