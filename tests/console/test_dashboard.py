"""The dashboard's numbers against the database and the broker, and its queries against a large
delivery table: each must be answered from an index, never by reading the whole table."""

import statistics
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.notifications.models import Delivery, DeliveryStatus
from apps.notifications.operations import stats
from apps.notifications.queues import celery_queues
from tests.fakes.silent_tcp import SilentTcpServer
from tests.notifications.factories import DeliveryAttemptFactory, DeliveryFactory, NotificationFactory, dead_delivery
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db
DASHBOARD = reverse("admin-dashboard")


def delivery(*, age: timedelta, **fields) -> Delivery:
    made = DeliveryFactory(**fields)
    Delivery.objects.filter(pk=made.pk).update(created_at=timezone.now() - age)  # auto_now_add otherwise
    made.refresh_from_db()
    return made


class TestNumbers:
    def test_deliveries_per_channel_and_status_in_the_last_hour_and_day(self, admin_client):
        for _ in range(3):
            delivery(age=timedelta(minutes=5), channel="email", status=DeliveryStatus.SENT)
        delivery(age=timedelta(minutes=30), channel="email", status=DeliveryStatus.RETRYING)
        delivery(age=timedelta(hours=5), channel="sms", status=DeliveryStatus.FAILED)
        delivery(age=timedelta(days=3), channel="push", status=DeliveryStatus.SENT)  # in neither window

        response = admin_client.get(DASHBOARD)

        data = response.context["data"]
        assert data.last_hour == {"email": {"sent": 3, "retrying": 1}}
        assert data.last_day == {"email": {"sent": 3, "retrying": 1}, "sms": {"failed": 1}}
        page = response.content.decode()
        assert 'data-channel="email" data-total="4"' in page and 'data-status="retrying" data-count="1"' in page

    def test_latency_percentiles_from_accepted_to_sent(self, admin_client):
        now = timezone.now()
        seconds = [0.5, 1, 1.5, 2, 3, 4, 8, 13, 21, 60]
        for latency in seconds:
            made = delivery(age=timedelta(minutes=10), channel="email", status=DeliveryStatus.SENT)
            Delivery.objects.filter(pk=made.pk).update(sent_at=made.created_at + timedelta(seconds=latency))
        delivery(age=timedelta(hours=3), channel="email", status=DeliveryStatus.SENT, sent_at=now - timedelta(hours=2))

        [email] = admin_client.get(DASHBOARD).context["data"].latency

        cuts = statistics.quantiles(seconds, n=100, method="inclusive")  # percentile_cont's interpolation
        assert email.channel == "email" and email.count == len(seconds)
        assert email.percentiles == pytest.approx({50: cuts[49], 90: cuts[89], 99: cuts[98]}, abs=1e-3)

    def test_dead_letters_and_provider_error_rates(self, admin_client):
        for code in ("451", "451", "550"):
            dead_delivery(channel="email", error_code=code, attempts=1)  # one transient error attempt each
        sent = DeliveryFactory(channel="sms", status=DeliveryStatus.SENT)
        DeliveryAttemptFactory(delivery=sent, number=1, outcome="sent", error_code="")
        DeliveryAttemptFactory(delivery=sent, number=2, outcome="permanent_error", error_code="21211",
                               started_at=timezone.now() - timedelta(hours=2))  # outside the hour

        data = admin_client.get(DASHBOARD).context["data"]

        assert (data.dead_letters.total, data.dead_letters.by_channel) == (3, {"email": 3})
        assert data.dead_letters.by_error == {"451": 2, "550": 1}
        rates = {row.channel: (row.attempts, row.errors, row.top_codes) for row in data.provider_errors}
        assert rates == {"email": (3, 3, [("451", 2), ("550", 1)]), "sms": (1, 0, [])}

    def test_the_admin_index_links_the_dashboard_and_only_staff_see_it(self, admin_client, client):
        assert DASHBOARD in admin_client.get(reverse("admin:index")).content.decode()
        assert client.get(DASHBOARD).status_code == 302  # to the login page


class TestQueueDepths:
    CHANNEL = "consoletest"

    @pytest.fixture
    def channel_queue(self, settings, rabbitmq_vhost):
        from celery_app import app

        settings.NOTIFIER_CHANNELS = {self.CHANNEL: {"BACKEND": "apps.channels.backends.locmem.OutboxBackend"}}
        [queue] = [q for q in celery_queues(channels=[self.CHANNEL], broadcast_queue="unused") if self.CHANNEL in q.name]
        with app.connection_for_write() as conn:
            queue(conn.default_channel).declare()
            queue(conn.default_channel).purge()
        yield queue
        with app.connection_for_write() as conn:
            queue(conn.default_channel).delete()

    def test_depths_are_read_from_rabbitmq(self, admin_client, channel_queue):
        from celery_app import app

        with app.connection_for_write() as conn:
            producer = conn.Producer()
            for n in range(3):
                producer.publish({"n": n}, exchange="", routing_key=channel_queue.name, declare=[channel_queue])

        [depth] = stats.channel_queue_depths()
        page = admin_client.get(DASHBOARD).content.decode()

        assert (depth.queue, depth.messages) == ("notifications.consoletest", 3)
        assert (depth.dead_queue, depth.dead_messages) == ("notifications.consoletest.dead", None)
        assert 'data-queue="notifications.consoletest"' in page and "not declared" in page

    @pytest.mark.slow
    def test_a_broker_down_or_hung_shows_unavailable(self, admin_client, settings):
        settings.CELERY_BROKER_URL = f"amqp://guest:guest@127.0.0.1:{free_port()}//"  # refused
        assert stats.channel_queue_depths(timeout=1) is None
        assert "Broker unavailable" in admin_client.get(DASHBOARD).content.decode()
        with SilentTcpServer() as hung:  # accepts, never answers: the timeout ends the wait
            settings.CELERY_BROKER_URL = f"amqp://guest:guest@127.0.0.1:{hung.port}//"
            assert stats.channel_queue_depths(timeout=1) is None


@pytest.mark.slow
@pytest.mark.skipif(connection.vendor != "postgresql", reason="query plans are PostgreSQL's")
def test_the_dashboard_queries_never_scan_the_delivery_table():
    """With 200,000 deliveries over 200 days (and their attempts), each dashboard query reads an
    index: a sequential scan on the deliveries or attempts would grow with the table."""
    notification = NotificationFactory()
    n = 200_000
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO notifications_notification (id, project_id, recipient_id, "to", template_id,
                   template_version_id, data, category, priority, idempotency_key, request_fingerprint, correlation_id,
                   created_at)
               SELECT gen_random_uuid(), project_id, recipient_id, "to", template_id, template_version_id, '{}', '',
                      'normal', '', '', '', now() - (i * interval '86 seconds')
               FROM notifications_notification, generate_series(1, %s) AS i WHERE id = %s""",
            [n, notification.id],
        )
        cursor.execute(
            """INSERT INTO notifications_delivery (id, notification_id, channel, status, status_changed_at,
                   attempt_count, budget_attempts, last_error_code, last_error, skip_reason, hold_reason,
                   provider_message_id, created_at, sent_at)
               SELECT gen_random_uuid(), id, (ARRAY['email','sms','push'])[1 + (random() * 2)::int],
                      (ARRAY['sent','sent','sent','delivered','failed'])[1 + (random() * 4)::int], created_at,
                      1, 1, '', '', '', '', '', created_at, created_at + interval '2 seconds'
               FROM notifications_notification WHERE id <> %s""",
            [notification.id],
        )
        cursor.execute(
            """INSERT INTO notifications_deliveryattempt (delivery_id, number, started_at, duration_ms, outcome,
                   provider_message_id, provider_response, error_code, error_message)
               SELECT id, 1, created_at, 10, 'sent', '', '{}', '', '' FROM notifications_delivery"""
        )
        cursor.execute("ANALYZE notifications_notification, notifications_delivery, notifications_deliveryattempt")

    with CaptureQueriesContext(connection) as captured:
        stats.dashboard(broker_timeout=1)
    plans = {}
    with connection.cursor() as cursor:
        for query in captured:
            if query["sql"].lstrip().upper().startswith("SELECT"):
                cursor.execute("EXPLAIN " + query["sql"])
                plans[query["sql"]] = "\n".join(row[0] for row in cursor.fetchall())

    assert len(plans) >= 6
    for sql, plan in plans.items():
        assert "Seq Scan on notifications_delivery" not in plan, f"{sql}\n{plan}"
        assert "Seq Scan on notifications_deliveryattempt" not in plan, f"{sql}\n{plan}"
