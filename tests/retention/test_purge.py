"""Retention: what is older than the period goes, in batches of short transactions; what must stay
(recent rows, dead letters awaiting an operator, what a running broadcast needs) stays."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.inbox.models import InboxMessage
from apps.notifications.models import (
    Broadcast,
    BroadcastStatus,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Notification,
)
from apps.retention.services import retention_purge
from apps.retention.tasks import retention_purge_task
from tests.inbox.factories import InboxMessageFactory
from tests.notifications.factories import DeliveryAttemptFactory, DeliveryFactory, dead_delivery

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def thirty_days(settings):
    settings.NOTIFIER_RETENTION_DAYS = 30
    settings.NOTIFIER_INBOX_RETENTION_DAYS = 30


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


def sent(*, age_days: float, project=None, **fields) -> Delivery:
    """A delivery sent `age_days` ago, of a notification created then, with its one attempt."""
    if project is not None:
        fields.update(notification__project=project)
    delivery = DeliveryFactory(status=DeliveryStatus.SENT, status_changed_at=days_ago(age_days), recheck_at=None,
                               **fields)
    DeliveryAttemptFactory(delivery=delivery, number=1, outcome="sent")
    Notification.objects.filter(pk=delivery.notification_id).update(created_at=days_ago(age_days))
    return delivery


def test_old_rows_go_in_batches_and_recent_ones_stay(api, project):
    old = [sent(age_days=40, project=project) for _ in range(35)]
    recent = [sent(age_days=29, project=project) for _ in range(5)]

    result = retention_purge(batch_size=10)

    assert result.complete
    assert result.rows["deliveries"] == 35 and result.rows["attempts"] == 35 and result.rows["notifications"] == 35
    # 35 deliveries in batches of 10, then their 35 notifications: 4 batches each.
    assert result.batches == 8
    assert not Delivery.objects.filter(pk__in=[d.pk for d in old]).exists()
    assert api.get(f"/api/v1/notifications/{old[0].notification_id}").status_code == 404
    for delivery in recent:
        answer = api.get(f"/api/v1/notifications/{delivery.notification_id}")
        assert answer.status_code == 200
        assert answer.json()["deliveries"][0]["attempts"]
    assert retention_purge(batch_size=10).rows == {}  # nothing left to do


def test_dead_letters_stay_until_discarded_and_a_period_after(project):
    waiting = dead_delivery(status_changed_at=days_ago(400), notification__project=project)
    discarded_long_ago = dead_delivery(status_changed_at=days_ago(400), discarded_at=days_ago(31),
                                       notification__project=project)
    discarded_lately = dead_delivery(status_changed_at=days_ago(400), discarded_at=days_ago(2),
                                     notification__project=project)
    for delivery in (waiting, discarded_long_ago, discarded_lately):
        Notification.objects.filter(pk=delivery.notification_id).update(created_at=days_ago(400))

    retention_purge(batch_size=10)

    assert set(Delivery.objects.values_list("pk", flat=True)) == {waiting.pk, discarded_lately.pk}
    assert DeliveryAttempt.objects.filter(delivery=waiting).count() == 3
    assert not Notification.objects.filter(pk=discarded_long_ago.notification_id).exists()


def test_active_deliveries_stay_whatever_their_age_and_keep_their_notification(project):
    scheduled = DeliveryFactory(status=DeliveryStatus.PENDING, status_changed_at=days_ago(300),
                                notification__project=project)
    Notification.objects.filter(pk=scheduled.notification_id).update(created_at=days_ago(300))
    # Its email went long ago; its SMS is a dead letter still waiting: the email goes, the notification stays.
    email = sent(age_days=60, project=project)
    sms = dead_delivery(notification=email.notification, channel="sms", status_changed_at=days_ago(60))

    retention_purge()

    assert set(Delivery.objects.values_list("pk", flat=True)) == {scheduled.pk, sms.pk}
    assert Notification.objects.filter(pk=email.notification_id).exists()


def test_inbox_messages_have_their_own_period_and_outlive_their_delivery(settings, project):
    settings.NOTIFIER_INBOX_RETENTION_DAYS = 90
    delivery = sent(age_days=40, project=project, channel="in_app")
    kept = InboxMessageFactory(recipient=delivery.notification.recipient, delivery=delivery)
    gone = InboxMessageFactory(recipient=delivery.notification.recipient)
    InboxMessage.objects.filter(pk=kept.pk).update(created_at=days_ago(40))
    InboxMessage.objects.filter(pk=gone.pk).update(created_at=days_ago(91))

    result = retention_purge()

    assert result.rows["inbox_messages"] == 1 and result.rows["deliveries"] == 1
    assert list(InboxMessage.objects.values_list("pk", "delivery_id")) == [(kept.pk, None)]


def test_a_finished_broadcast_goes_with_its_notifications_and_a_running_one_keeps_them(project):
    finished, running = (
        Broadcast.objects.create(project=project, template=sent(age_days=1, project=project).notification.template,
                                 status=status, finished_at=finished_at, heartbeat_at=timezone.now())
        for status, finished_at in ((BroadcastStatus.COMPLETED, days_ago(40)), (BroadcastStatus.RUNNING, None))
    )
    Broadcast.objects.filter(pk__in=[finished.pk, running.pk]).update(created_at=days_ago(41))
    of_finished = sent(age_days=40, project=project, notification__broadcast=finished)
    of_running = sent(age_days=40, project=project, notification__broadcast=running)

    retention_purge()

    assert list(Broadcast.objects.values_list("pk", flat=True)) == [running.pk]
    assert not Notification.objects.filter(pk=of_finished.notification_id).exists()
    # The fan-out is unfinished: its notifications guard against notifying a user twice.
    assert Notification.objects.filter(pk=of_running.notification_id).exists()


def test_dry_run_counts_and_deletes_nothing(project, capsys):
    for _ in range(3):
        sent(age_days=40, project=project)
    sent(age_days=1, project=project)

    call_command("purge", "--dry-run")

    output = capsys.readouterr().out
    assert "would delete: 3 attempts, 0 broadcasts, 3 deliveries, 0 inbox_messages, 3 notifications" in output
    assert Delivery.objects.count() == 4 and Notification.objects.count() == 4


def test_a_run_stops_at_its_time_budget_and_the_next_one_continues(project):
    for _ in range(3):
        sent(age_days=40, project=project)

    cut_short = retention_purge(budget_seconds=1e-9)
    assert not cut_short.complete and Delivery.objects.count() == 3

    call_command("purge", "--batch-size", "2")
    assert Delivery.objects.count() == 0 and Notification.objects.count() == 0


def test_zero_days_keeps_everything(settings, project):
    settings.NOTIFIER_RETENTION_DAYS = settings.NOTIFIER_INBOX_RETENTION_DAYS = 0
    sent(age_days=4000, project=project)

    assert retention_purge().rows == {}
    assert Delivery.objects.count() == 1


def test_beat_runs_it_on_the_maintenance_queue(settings, project):
    from apps.notifications.queues import MAINTENANCE_QUEUE, TASK_RETENTION_PURGE

    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == TASK_RETENTION_PURGE)
    assert entry["schedule"] == settings.NOTIFIER_RETENTION_INTERVAL_SECONDS
    assert settings.CELERY_TASK_ROUTES[TASK_RETENTION_PURGE] == {"queue": MAINTENANCE_QUEUE}
    sent(age_days=40, project=project)

    assert retention_purge_task.apply().get()["rows"]["deliveries"] == 1
