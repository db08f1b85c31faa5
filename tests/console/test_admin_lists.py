"""The console's notification and delivery pages: statuses with colour, filters, search, the
timeline, read-only delivery logs, and a fixed number of queries per list page."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.core.models import OperatorAuditEntry
from apps.notifications.models import DeliveryStatus
from apps.notifications.operations.dead_letters import dead_letters_replay
from tests.notifications.factories import DeliveryAttemptFactory, DeliveryFactory, NotificationFactory, dead_delivery

pytestmark = pytest.mark.django_db


def listed(admin_client, model: str, **params) -> set[str]:
    response = admin_client.get(reverse(f"admin:notifications_{model}_changelist"), params)
    assert response.status_code == 200
    return {str(row.pk) for row in response.context["cl"].result_list}


class TestNotificationList:
    def test_each_delivery_shows_its_channel_and_status_in_colour(self, admin_client):
        notification = NotificationFactory()
        DeliveryFactory(notification=notification, channel="email", status=DeliveryStatus.SENT)
        DeliveryFactory(notification=notification, channel="sms", status=DeliveryStatus.DEAD)

        page = admin_client.get(reverse("admin:notifications_notification_changelist")).content.decode()

        assert 'data-status="sent"' in page and "email: sent" in page and "#2e7d32" in page  # green
        assert 'data-status="dead"' in page and "sms: dead" in page and "#6a1b9a" in page

    def test_filters_by_delivery_status_channel_project_template_category_and_date(self, admin_client):
        dead_sms = DeliveryFactory(channel="sms", status=DeliveryStatus.DEAD, notification__category="billing")
        sent_email = DeliveryFactory(channel="email", status=DeliveryStatus.SENT)
        old = NotificationFactory()
        old.created_at = timezone.now() - timedelta(days=40)
        old.save(update_fields=["created_at"])
        n_dead, n_sent = str(dead_sms.notification_id), str(sent_email.notification_id)

        assert listed(admin_client, "notification", status="dead") == {n_dead}
        assert listed(admin_client, "notification", channel="email") == {n_sent}
        assert listed(admin_client, "notification", channel="email", status="dead") == set()
        assert listed(admin_client, "notification", project__id__exact=sent_email.notification.project_id) == {n_sent}
        assert listed(admin_client, "notification", template__id__exact=dead_sms.notification.template_id) == {n_dead}
        assert listed(admin_client, "notification", category="billing") == {n_dead}
        today = timezone.now().date()
        recent = listed(admin_client, "notification", created_at__gte=f"{today - timedelta(days=7)} 00:00:00+00:00",
                        created_at__lt=f"{today + timedelta(days=1)} 00:00:00+00:00")
        assert recent == {n_dead, n_sent}

    def test_search_by_ids_external_id_email_phone_and_provider_message_id(self, admin_client):
        delivery = DeliveryFactory(status=DeliveryStatus.SENT, provider_message_id="<msg-42@example.com>",
                                   notification__recipient__email="ada@example.com",
                                   notification__recipient__phone="+14155550123")
        DeliveryFactory()  # another user's, never found
        notification = delivery.notification
        expected = {str(notification.id)}

        for term in (str(notification.id), str(delivery.id), notification.to, "ada@example.com", "+14155550123",
                     "<msg-42@example.com>"):
            assert listed(admin_client, "notification", q=term) == expected, term
        assert listed(admin_client, "notification", q="nobody@example.com") == set()
        assert listed(admin_client, "delivery", q="ada@example.com") == {str(delivery.id)}
        assert listed(admin_client, "delivery", q="<msg-42@example.com>") == {str(delivery.id)}

    def test_a_notification_page_tells_its_story_as_one_timeline(self, admin_client, admin_user):
        delivery = dead_delivery(attempts=2, error_code="451")
        dead_letters_replay(delivery_ids=[delivery.id], actor=admin_user, note="provider back")

        page = admin_client.get(reverse("admin:notifications_notification_change", args=[delivery.notification_id]))

        body = page.content.decode()
        timeline = body[body.index('class="console-timeline"'):]
        order = [timeline.index(marker) for marker in ("accepted", "attempt 1", "attempt 2", f"replay by {admin_user.username}")]
        assert order == sorted(order)
        assert "provider back" in timeline and "SMTP 451 try again later" in timeline


class TestReadOnly:
    def test_delivery_logs_cannot_be_changed_or_deleted(self, admin_client):
        attempt = DeliveryAttemptFactory()
        url = reverse("admin:notifications_deliveryattempt_change", args=[attempt.pk])

        page = admin_client.get(url)
        admin_client.post(url, {"error_code": "tampered"})
        deleted = admin_client.post(reverse("admin:notifications_deliveryattempt_delete", args=[attempt.pk]), {"post": "yes"})

        attempt.refresh_from_db()
        assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
        assert attempt.error_code == "451" and deleted.status_code == 403

    def test_the_audit_log_is_read_only(self, admin_client, admin_user):
        dead_letters_replay(delivery_ids=[dead_delivery().id], actor=admin_user)
        entry = OperatorAuditEntry.objects.get()

        page = admin_client.get(reverse("admin:core_operatorauditentry_changelist")).content.decode()
        changed = admin_client.post(reverse("admin:core_operatorauditentry_change", args=[entry.pk]), {"count": 0})
        deleted = admin_client.post(reverse("admin:core_operatorauditentry_delete", args=[entry.pk]), {"post": "yes"})

        assert "dead_letters.replay" in page and admin_user.username in page
        assert changed.status_code == 403 and deleted.status_code == 403
        assert OperatorAuditEntry.objects.get().count == 1


def queries_for(admin_client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert admin_client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("model", ["notification", "delivery", "deadletter", "deliveryattempt"])
def test_a_list_page_costs_the_same_queries_for_one_row_or_many(admin_client, model, django_assert_max_num_queries):
    url = reverse(f"admin:notifications_{model}_changelist")
    dead_delivery(attempts=1)
    admin_client.get(url)  # the session and the user's permissions are cached from here on
    one = queries_for(admin_client, url)
    for _ in range(15):
        dead_delivery(attempts=2)

    with django_assert_max_num_queries(one):
        admin_client.get(url)


def _audited_key():
    from apps.projects.services import api_key_create

    api_key_create(project_name=f"p-{timezone.now().timestamp()}", actor_label="cli:ops")


@pytest.mark.parametrize(("admin_name", "make"), [
    ("projects_apikey", _audited_key),
    ("projects_project", _audited_key),
    ("core_operatorauditentry", _audited_key),
    ("notification_templates_template", lambda: NotificationFactory()),
])
def test_other_console_lists_cost_the_same_queries_for_one_row_or_many(admin_client, admin_name, make,
                                                                       django_assert_max_num_queries):
    url = reverse(f"admin:{admin_name}_changelist")
    make()
    admin_client.get(url)
    one = queries_for(admin_client, url)
    for _ in range(15):
        make()

    with django_assert_max_num_queries(one):
        admin_client.get(url)
