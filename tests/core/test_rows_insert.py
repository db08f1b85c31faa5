"""rows_insert: new rows in one statement (an INSERT for a few, COPY for many), stored as bulk_create stores them;
rows_insert_together: the rows of several models, all or none (one statement for a few)."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.core.rows_insert import SMALL_BATCH_ROWS, rows_insert, rows_insert_together
from apps.notifications.models import Delivery, DeliveryAttempt, DeliveryStatus, Notification
from tests.notifications.factories import DeliveryFactory, NotificationFactory

pytestmark = pytest.mark.django_db
# One batch each way: a single POST's one row goes as an INSERT, a broadcast's batch as COPY.
AN_INSERT, A_COPY = 3, SMALL_BATCH_ROWS + 5
SEND_AT = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def new_notifications(like: Notification, count: int) -> list[Notification]:
    return [Notification(project=like.project, recipient=like.recipient, to=f"copied{n}", template=like.template,
                         template_version=like.template_version, data={"n": n, "name": "Zoë \t\"quoted\"\n"},
                         category="news", send_at=None if n else SEND_AT)
            for n in range(count)]


def stored(notification: Notification) -> dict:
    fields = [f.attname for f in Notification._meta.concrete_fields]
    return {name: getattr(notification, name) for name in fields}


@pytest.mark.parametrize("count", [1, AN_INSERT, A_COPY])
def test_the_rows_read_back_as_bulk_create_stores_them(count):
    like = NotificationFactory()
    copied, bulk = new_notifications(like, count), new_notifications(like, count)

    rows_insert(Notification, copied)
    Notification.objects.bulk_create(bulk)

    for mine, theirs in zip(copied, bulk, strict=True):
        assert not mine._state.adding and mine.created_at is not None  # as bulk_create leaves the instance
        read = stored(Notification.objects.get(id=mine.id))
        assert read == stored(mine)
        expected = stored(Notification.objects.get(id=theirs.id))
        assert {k: v for k, v in read.items() if k not in ("id", "created_at")} == {
            k: v for k, v in expected.items() if k not in ("id", "created_at")}


@pytest.mark.parametrize(("count", "statement"), [(AN_INSERT, "INSERT "), (A_COPY, "COPY ")])
def test_the_rows_are_one_statement_in_the_query_log_and_the_execute_wrappers(count, statement):
    like = NotificationFactory()
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(wrapper):
        rows_insert(Notification, new_notifications(like, count))

    assert len(captured.captured_queries) == 1 and captured.captured_queries[0]["sql"].startswith(statement)
    assert len(seen) == 1 and seen[0].startswith(statement)
    assert Notification.objects.filter(to__startswith="copied").count() == count


@pytest.mark.parametrize("count", [AN_INSERT, A_COPY])
def test_a_duplicate_key_is_an_integrity_error_and_nothing_of_the_batch_is_stored(count):
    like = NotificationFactory()
    notifications = new_notifications(like, count)
    rows_insert(Notification, notifications[:1])
    deliveries = [Delivery(notification=like, channel="email", status=DeliveryStatus.QUEUED,
                           status_changed_at=timezone.now())]

    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert(Delivery, deliveries)
        rows_insert(Notification, notifications)  # the first one again

    assert Notification.objects.filter(to__startswith="copied").count() == 1
    assert not Delivery.objects.exists()


@pytest.mark.parametrize("count", [2, A_COPY])
def test_rows_whose_keys_the_database_makes_are_inserted_without_them_when_no_one_reads_the_keys(count):
    delivery = DeliveryFactory()
    attempts = [DeliveryAttempt(delivery=delivery, number=n, started_at=SEND_AT, duration_ms=7, outcome="sent",
                                provider="smtp:mx:25", provider_message_id=f"<{n}@example.com>",
                                provider_response={"n": n}) for n in range(1, count + 1)]

    with pytest.raises(ValueError):
        rows_insert(DeliveryAttempt, attempts)  # without keys_unread a key is required
    rows_insert(DeliveryAttempt, attempts, keys_unread=True)

    assert all(a.pk is None and not a._state.adding for a in attempts)
    stored_attempts = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.outcome, a.provider, a.passed_over, a.provider_response, a.started_at)
            for a in stored_attempts] == [(n, "sent", "smtp:mx:25", [], {"n": n}, SEND_AT) for n in range(1, count + 1)]


def new_deliveries(notifications: list[Notification], channels=("email",)) -> list[Delivery]:
    return [Delivery(notification=n, channel=channel, status=DeliveryStatus.QUEUED, status_changed_at=timezone.now())
            for n in notifications for channel in channels]


@pytest.mark.django_db(transaction=True)  # outside any transaction, as the single POST runs it
def test_a_few_rows_of_several_models_go_as_one_statement():
    notifications = new_notifications(NotificationFactory(), 2)
    deliveries = new_deliveries(notifications, channels=("email", "sms"))

    with CaptureQueriesContext(connection) as captured:
        rows_insert_together([(Notification, notifications), (Delivery, deliveries)])

    assert [q["sql"].split(" ", 1)[0] for q in captured.captured_queries] == ["WITH"]
    assert all(not obj._state.adding for obj in [*notifications, *deliveries])
    assert stored(Notification.objects.get(id=notifications[1].id)) == stored(notifications[1])
    assert sorted(Delivery.objects.filter(notification__in=notifications).values_list("channel", flat=True)) == [
        "email", "email", "sms", "sms"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("count", [AN_INSERT, A_COPY])
def test_rows_of_several_models_are_stored_all_or_none(count):
    notifications = new_notifications(NotificationFactory(), count)
    twice = new_deliveries(notifications[:1], channels=("email", "email"))  # one channel twice: unique violation

    with pytest.raises(IntegrityError):
        rows_insert_together([(Notification, notifications), (Delivery, new_deliveries(notifications[1:]) + twice)])

    assert not Notification.objects.filter(to__startswith="copied").exists()
    assert not Delivery.objects.filter(notification__to__startswith="copied").exists()
