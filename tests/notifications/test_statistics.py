"""The notification and delivery tables are analysed once they have changed by more rows than they
had at their last ANALYZE (apps/notifications/delivery/statistics.py): the cached plans of a young table
follow it as it grows, between autovacuum's looks or without it."""

import time

import pytest
from django.db import connection

from apps.notifications.delivery.statistics import STATISTICS_MIN_CHANGED_ROWS, delivery_tables_statistics_refresh
from apps.notifications.models import Notification
from apps.notifications.tasks import statistics_refresh_task
from tests.notifications.factories import NotificationFactory

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = Notification._meta.db_table


def _analyze_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = %s", [TABLE])
        return cursor.fetchone()[0]


def _notifications_added(count: int) -> None:
    """`count` notifications committed, and counted by PostgreSQL's statistics."""
    first = NotificationFactory()
    Notification.objects.bulk_create(NotificationFactory.build_batch(
        count - 1, project=first.project, recipient=first.recipient, template=first.template,
        template_version=first.template_version))
    # A backend reports its changes a while after its commit (up to ten seconds when it then sits
    # idle); until then the rule cannot see them.
    deadline = time.monotonic() + 20
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = %s", [TABLE])
            if cursor.fetchone()[0] >= count:
                return
            time.sleep(0.2)
    raise AssertionError(f"PostgreSQL did not count {count} new notifications")


def test_a_table_that_more_than_doubled_is_analysed_and_one_that_grew_less_is_not():
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {TABLE}")  # its statistics of when it was empty
    analysed_before = _analyze_count()

    _notifications_added(STATISTICS_MIN_CHANGED_ROWS + 500)
    assert statistics_refresh_task() == [TABLE]
    assert _analyze_count() == analysed_before + 1

    # Analysed at 1,500 rows: 500 more is a third of it, for autovacuum's tenth to catch.
    _notifications_added(500)
    assert delivery_tables_statistics_refresh() == []
    assert _analyze_count() == analysed_before + 1


def test_a_young_table_is_left_to_autovacuum_until_it_has_changed_by_a_thousand_rows():
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {TABLE}")
    _notifications_added(STATISTICS_MIN_CHANGED_ROWS // 2)

    assert delivery_tables_statistics_refresh() == []
