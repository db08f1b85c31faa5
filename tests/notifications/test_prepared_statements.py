"""The single POST's read, a worker's claim and record, and the publisher's mark are prepared statements once a
connection has sent them a few times (apps/core/prepared.py): PostgreSQL then no longer plans them
on every call, and what they do is what the unprepared statements did."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.core.rows import PREPARED_MOST_ARGUMENTS
from apps.notifications.delivery.claim import deliveries_claim_load
from apps.notifications.delivery.sending import delivery_send
from apps.notifications.models import Delivery, DeliveryStatus
from apps.notifications.outbox.deliveries import deliveries_mark_published
from apps.users.selectors import recipients_find
from notifier.postgresql.base import DatabaseWrapper
from tests.notifications.factories import DeliveryFactory
from tests.projects.factories import ProjectFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db


def _prepared_statements(conn) -> list[str]:
    with conn.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_the_one_user_read_is_prepared_after_the_threshold_and_answers_as_before():
    project = ProjectFactory()
    users = RecipientFactory.create_batch(3, project=project)
    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    assert threshold
    before = [recipients_find(project=project, external_ids=[user.external_id]) for user in users]

    for _ in range(threshold):
        recipients_find(project=project, external_ids=[users[0].external_id])
    prepared = [s for s in _prepared_statements(connection) if '"recipients_recipient"' in s]
    assert len(prepared) == 1 and "$2" in prepared[0]  # the values are parameters, not part of the text

    after = [recipients_find(project=project, external_ids=[user.external_id]) for user in users]
    assert [{k: (v.pk, v.email) for k, v in found.items()} for found in after] == \
        [{k: (v.pk, v.email) for k, v in found.items()} for found in before]
    assert after[1][users[1].external_id].external_id == users[1].external_id


def test_a_read_of_many_values_is_sent_as_django_sends_it():
    project = ProjectFactory()
    users = RecipientFactory.create_batch(PREPARED_MOST_ARGUMENTS + 1, project=project)
    ids = [user.external_id for user in users]
    for _ in range(settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"] + 1):
        assert set(recipients_find(project=project, external_ids=ids)) == set(ids)
    # Prepared statements outlive a test's transaction: another test's one-user read may be there,
    # but none of this read's shape (the project and each value a parameter).
    most_parameters = f"${len(ids) + 1}"
    assert not [s for s in _prepared_statements(connection) if '"recipients_recipient"' in s and most_parameters in s]


def test_a_workers_claim_is_prepared_whatever_the_batch_size_and_claims_as_before():
    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    deliveries = DeliveryFactory.create_batch(threshold + 3)
    batches = [[d.pk] for d in deliveries[:threshold]] + [[d.pk for d in deliveries[threshold:]]]
    claimed = [deliveries_claim_load(batch) for batch in batches]
    assert [sorted(d.pk for d in batch) for batch in claimed] == [sorted(batch) for batch in batches]
    last = claimed[-1]
    assert {d.status for d in last} == {DeliveryStatus.SENDING} and {d.attempt_count for d in last} == {1}
    assert last[0].notification.recipient.email  # what the claim joins came with it
    assert len([s for s in _prepared_statements(connection) if s.startswith("WITH claimed AS")]) == 1
    assert deliveries_claim_load([deliveries[0].pk]) == []  # claimed once: not again


def test_a_workers_record_is_prepared_and_records_as_before(outbox):
    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    deliveries = DeliveryFactory.create_batch(threshold + 1)
    for delivery in deliveries:
        assert delivery_send(delivery_id=str(delivery.pk)).status == DeliveryStatus.SENT
    for delivery in deliveries:
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.SENT and delivery.sent_at and delivery.recheck_at is None
        assert [a.outcome for a in delivery.attempts.all()] == ["sent"]
    assert len(outbox) == len(deliveries)
    prepared = _prepared_statements(connection)
    assert len([s for s in prepared if s.startswith('SELECT "id", "attempt_count"') and "FOR UPDATE" in s]) == 1
    assert len([s for s in prepared if s.startswith('UPDATE "notifications_delivery"') and "AS v(id" in s]) == 1


def test_the_publishers_mark_is_prepared_whatever_the_number_of_ids_and_marks_as_before():
    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    now = timezone.now()
    unpublished_deadline = now + timedelta(seconds=settings.NOTIFIER_UNPUBLISHED_TIMEOUT_SECONDS)
    queued = DeliveryFactory.create_batch(threshold + 2, status=DeliveryStatus.QUEUED, recheck_at=unpublished_deadline)
    claimed = DeliveryFactory(status=DeliveryStatus.SENDING, recheck_at=unpublished_deadline)
    published_again_later = DeliveryFactory(status=DeliveryStatus.QUEUED, recheck_at=now + timedelta(days=30))
    batches = [[str(d.pk)] for d in queued[:threshold]]
    batches.append([str(d.pk) for d in [*queued[threshold:], claimed, published_again_later]])

    for batch in batches:
        deliveries_mark_published(delivery_ids=batch)

    queued_deadline = now + timedelta(seconds=settings.NOTIFIER_QUEUED_TIMEOUT_SECONDS)
    for delivery in queued:
        delivery.refresh_from_db()
        assert queued_deadline <= delivery.recheck_at < queued_deadline + timedelta(minutes=1)
    for untouched in (claimed, published_again_later):  # a worker's claim, the sweep's longer wait
        assert Delivery.objects.get(pk=untouched.pk).recheck_at == untouched.recheck_at
    assert len([s for s in _prepared_statements(connection) if s.startswith("WITH marked AS")]) == 1


def test_behind_an_external_pooler_nothing_is_prepared():
    """Without the pool (NOTIFIER_DB_POOL=false) OPTIONS has no prepare_threshold: Django's default, None."""
    options = {k: v for k, v in connection.settings_dict["OPTIONS"].items() if k not in ("pool", "prepare_threshold")}
    wrapper = DatabaseWrapper({**connection.settings_dict, "OPTIONS": options}, alias="no_prepare")
    try:
        for _ in range(10):
            with wrapper.prepared_cursor() as cursor:
                cursor.execute("SELECT %s::int + 1", [41])
                assert cursor.fetchone() == (42,)
        assert _prepared_statements(wrapper) == []
    finally:
        wrapper.close()
