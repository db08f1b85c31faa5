"""Edits made in the console reach the operators' audit log through the services, and deleting a
user there erases them as the API's DELETE does."""

import pytest
from django.urls import reverse

from apps.core.models import OperatorAuditEntry
from apps.notifications.models import Delivery, Notification
from apps.projects.models import Project
from apps.users.models import Recipient
from tests.notifications.factories import DeliveryFactory
from tests.projects.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def project_form(project, **changes):
    """The console's project form as a browser posts it, with `changes`; no API key rows."""
    return {
        "name": project.name, "default_locale": project.default_locale, "webhook_url": project.webhook_url,
        "status_webhook_url": project.status_webhook_url, "api_rate_limit": project.api_rate_limit,
        "critical_categories": "[]", "frequency_caps": "[]",
        "api_keys-TOTAL_FORMS": "0", "api_keys-INITIAL_FORMS": "0",
        "api_keys-MIN_NUM_FORMS": "0", "api_keys-MAX_NUM_FORMS": "1000",
        **changes,
    }


def test_a_rate_turned_off_and_a_webhook_url_changed_in_the_console_are_audited_without_the_secret(
        admin_client, admin_user):
    project = ProjectFactory(api_rate_limit="10/s", webhook_url="http://127.0.0.1:9/old", webhook_secret="s3cret")
    url = reverse("admin:projects_project_change", args=[project.pk])

    response = admin_client.post(url, project_form(project, api_rate_limit="off", webhook_url="http://127.0.0.1:9/new"))

    assert response.status_code == 302, response.content.decode()[:2000]
    project.refresh_from_db()
    assert (project.api_rate_limit, project.webhook_url) == ("off", "http://127.0.0.1:9/new")
    entry = OperatorAuditEntry.objects.get(action="project.update")
    assert (entry.actor, entry.count, entry.details["ids"]) == (admin_user, 1, [str(project.pk)])
    assert entry.details["changes"] == {
        "api_rate_limit": {"old": "10/s", "new": "off"},
        "webhook_url": {"old": "http://127.0.0.1:9/old", "new": "http://127.0.0.1:9/new"},
    }
    assert "s3cret" not in str(entry.details)


def test_a_webhook_url_to_an_internal_address_is_refused_in_the_console_as_in_the_api(admin_client, settings):
    settings.NOTIFIER_WEBHOOK_ALLOWED_NETWORKS = []
    project = ProjectFactory()
    url = reverse("admin:projects_project_change", args=[project.pk])

    response = admin_client.post(url, project_form(project, webhook_url="http://127.0.0.1:5432/"))

    assert response.status_code == 200 and "errorlist" in response.content.decode()
    project.refresh_from_db()
    assert project.webhook_url == "" and not OperatorAuditEntry.objects.exists()


def test_a_project_added_in_the_console_is_audited(admin_client, admin_user):
    response = admin_client.post(reverse("admin:projects_project_add"),
                                 project_form(Project(name="shop"), api_rate_limit="5/s"))

    assert response.status_code == 302, response.content.decode()[:2000]
    project = Project.objects.get(name="shop")
    entry = OperatorAuditEntry.objects.get(action="project.create")
    assert (entry.actor, entry.details["ids"], entry.details["changes"]["api_rate_limit"]) == (
        admin_user, [str(project.pk)], {"old": "", "new": "5/s"})


def a_user_with_a_logged_notification(external_id: str) -> tuple[Recipient, Delivery]:
    delivery = DeliveryFactory(notification__recipient__external_id=external_id,
                               notification__recipient__email=f"{external_id}@example.com",
                               notification__data={"email": f"{external_id}@example.com"},
                               last_error=f"550 mailbox {external_id}@example.com unavailable")
    return delivery.notification.recipient, delivery


def test_deleting_a_user_in_the_console_erases_them_from_the_delivery_log_and_is_audited(admin_client, admin_user):
    recipient, delivery = a_user_with_a_logged_notification("ada")
    url = reverse("admin:recipients_recipient_delete", args=[recipient.pk])

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not Recipient.objects.filter(pk=recipient.pk).exists()
    notification = Notification.objects.get(pk=delivery.notification_id)
    delivery.refresh_from_db()
    assert (notification.data, delivery.last_error) == ({}, "")
    entry = OperatorAuditEntry.objects.get(action="users.erase")
    assert (entry.actor, entry.count, entry.details["ids"]) == (
        admin_user, 1, [f"{recipient.project.name}/ada"])


def test_the_bulk_delete_action_erases_every_selected_user_in_one_audit_entry(admin_client, admin_user):
    selected = [a_user_with_a_logged_notification(name) for name in ("ada", "grace")]
    kept, kept_delivery = a_user_with_a_logged_notification("linus")

    response = admin_client.post(reverse("admin:recipients_recipient_changelist"), {
        "action": "delete_selected", "post": "yes", "_selected_action": [recipient.pk for recipient, _ in selected],
    })

    assert response.status_code == 302
    assert list(Recipient.objects.values_list("pk", flat=True)) == [kept.pk]
    for _, delivery in selected:
        assert Notification.objects.get(pk=delivery.notification_id).data == {}
    assert Notification.objects.get(pk=kept_delivery.notification_id).data == {"email": "linus@example.com"}
    entry = OperatorAuditEntry.objects.get(action="users.erase")
    assert (entry.actor, entry.count) == (admin_user, 2)
    assert sorted(external_id.split("/")[1] for external_id in entry.details["ids"]) == ["ada", "grace"]


def test_a_new_webhook_secret_typed_in_the_console_rotates_and_is_audited_without_its_value(admin_client):
    project = ProjectFactory(webhook_url="http://127.0.0.1:9/hooks", webhook_secret="the-old-one")
    url = reverse("admin:projects_project_change", args=[project.pk])

    page = admin_client.get(url).content.decode()
    response = admin_client.post(url, project_form(project, new_webhook_secret="the-new-one"))

    assert "the-old-one" not in page
    assert response.status_code == 302, response.content.decode()[:2000]
    project.refresh_from_db()
    assert (project.webhook_secret, project.webhook_secret_previous) == ("the-new-one", "the-old-one")
    assert project.webhook_secret_previous_until is not None
    entry = OperatorAuditEntry.objects.get(action="project.update")
    assert entry.details["changes"] == {"webhook_secret": "(changed)"}
    assert "the-new-one" not in str(entry.details) and "the-old-one" not in str(entry.details)
