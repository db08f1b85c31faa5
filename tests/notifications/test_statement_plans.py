"""The publisher's mark and a worker's claim find their deliveries by the key's index alone, whatever
PostgreSQL's statistics say (apps/notifications/outbox/deliveries.py, `_mark_published_sql`;
delivery/claim.py). With statistics taken before a backlog grew (autovacuum behind, or off), the
planner used to AND the key with a status index and read an entry for every queued delivery, so
each mark and claim cost more the longer the queues were."""

import pytest
from django.db import connection

from apps.notifications.delivery.claim import deliveries_claim_load
from apps.notifications.outbox.deliveries import deliveries_mark_published
from tests.notifications.factories import DeliveryFactory

pytestmark = pytest.mark.django_db

STATUS_INDEXES = ("delivery_status_channel", "delivery_active_recheck")


def _plans_of(call) -> list[str]:
    """The plan PostgreSQL picks for each statement `call` sends, with the parameters it sent."""
    sent = []

    def record(execute, sql, params, many, context):
        sent.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        call()
    plans = []
    with connection.cursor() as cursor:
        for sql, params in sent:
            cursor.execute("EXPLAIN " + sql, params)
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return plans


@pytest.fixture
def statistics_of_an_empty_table():
    """What the planner knows of a delivery table analysed before its backlog arrived."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM notifications_delivery")
        cursor.execute("ANALYZE notifications_delivery")
        # A few rows stand in for the backlog: a scan of the whole table would be what they cost.
        cursor.execute("SET LOCAL enable_seqscan = off")


def test_the_mark_and_the_claim_read_no_status_index_however_stale_the_statistics(statistics_of_an_empty_table):
    deliveries = DeliveryFactory.create_batch(3)
    ids = [str(delivery.pk) for delivery in deliveries]

    plans = _plans_of(lambda: deliveries_mark_published(delivery_ids=ids)) + _plans_of(lambda: deliveries_claim_load(ids))

    assert len(plans) == 2
    for plan in plans:
        assert "notifications_delivery_pkey" in plan
        assert not [index for index in STATUS_INDEXES if index in plan], plan
