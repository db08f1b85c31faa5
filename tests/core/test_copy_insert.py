"""rows_copy: many new rows in one COPY, stored as bulk_create stores them."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.core.copy_insert import rows_copy
from apps.notifications.models import Delivery, DeliveryAttempt, DeliveryStatus, Notification
from tests.notifications.factories import DeliveryFactory, NotificationFactory

pytestmark = pytest.mark.django_db
SEND_AT = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def new_notifications(like: Notification, count: int) -> list[Notification]:
    return [Notification(project=like.project, recipient=like.recipient, to=f"copied{n}", template=like.template,
                         template_version=like.template_version, data={"n": n, "name": "Zoë \t\"quoted\"\n"},
                         category="news", send_at=None if n else SEND_AT)
            for n in range(count)]


def stored(notification: Notification) -> dict:
    fields = [f.attname for f in Notification._meta.concrete_fields]
    return {name: getattr(notification, name) for name in fields}


def test_the_rows_read_back_as_bulk_create_stores_them():
    like = NotificationFactory()
    copied, bulk = new_notifications(like, 3), new_notifications(like, 3)

    rows_copy(Notification, copied)
    Notification.objects.bulk_create(bulk)

    for mine, theirs in zip(copied, bulk, strict=True):
        assert not mine._state.adding and mine.created_at is not None  # as bulk_create leaves the instance
        read = stored(Notification.objects.get(id=mine.id))
        assert read == stored(mine)
        expected = stored(Notification.objects.get(id=theirs.id))
        assert {k: v for k, v in read.items() if k not in ("id", "created_at")} == {
            k: v for k, v in expected.items() if k not in ("id", "created_at")}


def test_the_copy_is_one_statement_in_the_query_log_and_the_execute_wrappers():
    like = NotificationFactory()
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(wrapper):
        rows_copy(Notification, new_notifications(like, 5))

    assert len(captured.captured_queries) == 1 and captured.captured_queries[0]["sql"].startswith("COPY ")
    assert seen == [captured.captured_queries[0]["sql"]]
    assert Notification.objects.filter(to__startswith="copied").count() == 5


def test_a_duplicate_key_is_an_integrity_error_and_nothing_of_the_batch_is_stored():
    like = NotificationFactory()
    notifications = new_notifications(like, 2)
    rows_copy(Notification, notifications[:1])
    deliveries = [Delivery(notification=like, channel="email", status=DeliveryStatus.QUEUED,
                           status_changed_at=timezone.now())]

    with pytest.raises(IntegrityError), transaction.atomic():
        rows_copy(Delivery, deliveries)
        rows_copy(Notification, notifications)  # the first one again

    assert Notification.objects.filter(to__startswith="copied").count() == 1
    assert not Delivery.objects.exists()


def test_rows_whose_keys_the_database_makes_are_copied_without_them_when_no_one_reads_the_keys():
    delivery = DeliveryFactory()
    attempts = [DeliveryAttempt(delivery=delivery, number=n, started_at=SEND_AT, duration_ms=7, outcome="sent",
                                provider="smtp:mx:25", provider_message_id=f"<{n}@example.com>",
                                provider_response={"n": n}) for n in (1, 2)]

    with pytest.raises(ValueError):
        rows_copy(DeliveryAttempt, attempts)  # without keys_unread a key is required
    rows_copy(DeliveryAttempt, attempts, keys_unread=True)

    assert [a.pk for a in attempts] == [None, None] and not attempts[0]._state.adding
    stored_attempts = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.outcome, a.provider, a.passed_over, a.provider_response, a.started_at)
            for a in stored_attempts] == [(1, "sent", "smtp:mx:25", [], {"n": 1}, SEND_AT),
                                          (2, "sent", "smtp:mx:25", [], {"n": 2}, SEND_AT)]
