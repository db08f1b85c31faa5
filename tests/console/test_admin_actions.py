"""Acting from the console: bulk replay and discard through a confirmation page, dead-letter
counts, API keys created once and revoked, template previews, and rate-limited logins."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.core.models import OperatorAuditEntry
from apps.notifications.models import DeliveryStatus
from apps.projects.models import ApiKey
from tests.notifications.factories import DeliveryFactory, dead_delivery
from tests.projects.factories import ProjectFactory
from tests.templates.factories import TemplateVersionFactory

pytestmark = pytest.mark.django_db

DEAD_LETTERS = reverse("admin:notifications_deadletter_changelist")


class TestBulkActions:
    def test_replay_of_every_filtered_row_asks_first_saying_how_many_then_replays_them(self, admin_client, admin_user):
        emails = [dead_delivery(channel="email") for _ in range(3)]
        sms = dead_delivery(channel="sms")
        selection = {"action": "replay", "select_across": "1", "_selected_action": [emails[0].id]}
        url = f"{DEAD_LETTERS}?channel__exact=email"

        asked = admin_client.post(url, selection)

        assert asked.status_code == 200
        assert "Replay 3 deliveries" in asked.content.decode()
        assert {d.status for d in [*emails, sms] if not d.refresh_from_db()} == {DeliveryStatus.DEAD}

        done = admin_client.post(url, {**selection, "confirmed": "yes"}, follow=True)

        for delivery in [*emails, sms]:
            delivery.refresh_from_db()
        assert [d.status for d in emails] == [DeliveryStatus.QUEUED] * 3 and sms.status == DeliveryStatus.DEAD
        assert "Replayed 3 deliveries." in done.content.decode()
        entry = OperatorAuditEntry.objects.get(action="dead_letters.replay")
        assert (entry.actor, entry.count, sorted(entry.details["ids"])) == (admin_user, 3, sorted(str(d.id) for d in emails))

    def test_discard_asks_first_and_says_what_is_left_alone(self, admin_client):
        dead = dead_delivery()
        sent = DeliveryFactory(status=DeliveryStatus.SENT)
        selection = {"action": "discard", "_selected_action": [dead.id, sent.id]}
        url = reverse("admin:notifications_delivery_changelist")

        asked = admin_client.post(url, selection).content.decode()
        admin_client.post(url, {**selection, "confirmed": "yes"})

        assert "Discard 1 dead letter" in asked and "left alone" in asked
        dead.refresh_from_db()
        assert dead.discarded_at is not None
        assert OperatorAuditEntry.objects.get(action="dead_letters.discard").count == 1

    def test_the_dead_letter_list_counts_per_channel_and_per_error_code(self, admin_client):
        for channel, code in [("email", "451"), ("email", "451"), ("email", "550"), ("sms", "21611")]:
            dead_delivery(channel=channel, error_code=code)
        dead_delivery(channel="push", discarded_at="2026-01-01T00:00:00Z")  # out of the queue

        counts = admin_client.get(DEAD_LETTERS).context["dead_letter_counts"]

        assert counts.total == 4
        assert counts.by_channel == {"email": 3, "sms": 1}
        assert counts.by_error == {"451": 2, "21611": 1, "550": 1}


class TestApiKeys:
    def test_a_key_created_in_the_console_is_shown_once_and_works(self, admin_client, admin_user):
        project = ProjectFactory(name="shop")

        created = admin_client.post(reverse("admin:projects_apikey_add"), {"project": project.pk, "name": "prod"})

        raw_key = created.context["raw_key"]
        assert raw_key in created.content.decode() and "no-store" in created["Cache-Control"]
        api_key = ApiKey.objects.get(project=project)
        for page in (reverse("admin:projects_apikey_changelist"), reverse("admin:projects_apikey_change", args=[api_key.pk]),
                     reverse("admin:projects_project_change", args=[project.pk])):
            body = admin_client.get(page).content.decode()
            assert api_key.prefix in body and raw_key not in body  # recognisable, never shown again
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
        assert client.get("/api/v1/project").json()["name"] == "shop"
        entry = OperatorAuditEntry.objects.get(action="api_key.create")
        assert entry.actor == admin_user and entry.count == 1

    def test_a_revoked_key_gets_401_after_a_confirmation(self, admin_client, api, api_key):
        url = reverse("admin:projects_apikey_changelist")
        selection = {"action": "revoke", "_selected_action": [api_key.pk]}
        assert api.get("/api/v1/project").status_code == 200

        asked = admin_client.post(url, selection).content.decode()
        assert "Revoke 1 API key" in asked and api.get("/api/v1/project").status_code == 200

        admin_client.post(url, {**selection, "confirmed": "yes"})

        refused = api.get("/api/v1/project")
        assert refused.status_code == 401 and refused.json()["error"]["code"]
        assert OperatorAuditEntry.objects.get(action="api_key.revoke").count == 1

    def test_last_use_is_shown_and_written_at_most_once_a_minute(self, admin_client, api, api_key, django_assert_num_queries):
        from datetime import timedelta

        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from apps.projects.key_cache import api_key_cache_clear

        def writes_to_keys() -> int:
            with CaptureQueriesContext(connection) as captured:
                assert api.get("/api/v1/project").status_code == 200
            return sum(1 for q in captured if q["sql"].startswith("UPDATE") and "projects_apikey" in q["sql"])

        assert api_key.last_used_at is None
        assert writes_to_keys() == 1
        assert [writes_to_keys() for _ in range(5)] == [0] * 5  # the hot path: no write within the minute
        api_key.refresh_from_db()
        first_use = api_key.last_used_at
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=first_use - timedelta(minutes=2))
        api_key_cache_clear()  # the process re-reads its keys within NOTIFIER_API_KEY_CACHE_SECONDS anyway
        assert writes_to_keys() == 1
        page = admin_client.get(reverse("admin:projects_apikey_changelist")).content.decode()
        assert "Last used at" in page or "last used at" in page.lower()


class TestTemplates:
    def test_a_template_shows_its_versions_and_previews_one_with_sample_data(self, admin_client):
        first = TemplateVersionFactory(version=1, channels={"email": {"subject": "Old {{ name }}", "text": "v1"}})
        TemplateVersionFactory(template=first.template, version=2,
                               channels={"email": {"subject": "Hello {{ name }}", "text": "Code {{ code }}"}})

        preview_url = reverse("admin:notification_templates_template_preview", args=[first.template_id])
        change = admin_client.get(reverse("admin:notification_templates_template_change", args=[first.template_id]))
        change = change.content.decode()
        preview = admin_client.get(preview_url, {"version": 1, "data": '{"name": "Ada"}'}).content.decode()
        bad = admin_client.get(preview_url, {"version": 2, "data": "not json"}).content.decode()

        assert "Hello {{ name }}" in change and "Old {{ name }}" in change and "?version=1" in change
        assert "Old Ada" in preview and "Hello" not in preview.split('id="preview"')[1]
        assert "Not JSON" in bad

    def test_the_preview_needs_the_templates_view_permission_not_only_staff(self, client, django_user_model):
        from django.contrib.auth.models import Permission

        version = TemplateVersionFactory(channels={"email": {"subject": "Secret {{ name }}", "text": "t"}})
        staff = django_user_model.objects.create_user("clerk", password="pw-clerk-1", is_staff=True)
        client.force_login(staff)
        preview_url = reverse("admin:notification_templates_template_preview", args=[version.template_id])
        query = {"version": version.version, "data": '{"name": "Ada"}'}

        refused = client.get(preview_url, query)
        staff.user_permissions.add(Permission.objects.get(codename="view_template",
                                                          content_type__app_label="notification_templates"))
        allowed = client.get(preview_url, query)

        assert refused.status_code == 403 and "Secret" not in refused.content.decode()
        assert allowed.status_code == 200 and "Secret Ada" in allowed.content.decode()


class TestLogin:
    def test_admin_logins_are_locked_after_repeated_failures_and_the_api_is_untouched(self, client, admin_user, api, settings):
        login = reverse("admin:login")
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            assert client.post(login, {"username": admin_user.username, "password": "wrong"}).status_code == 200

        locked = client.post(login, {"username": admin_user.username, "password": "wrong"})
        still_locked = client.post(login, {"username": admin_user.username, "password": "password"})

        assert locked.status_code == 429 and "Too many failed logins" in locked.content.decode()
        assert still_locked.status_code == 429  # even the right password waits for the lock to end
        assert "axes_reset_username" in still_locked.content.decode()
        # The lock is on this user name from this address: the operator logs in from elsewhere.
        elsewhere = client.post(login, {"username": admin_user.username, "password": "password"}, REMOTE_ADDR="10.0.0.2")
        assert elsewhere.status_code == 302
        assert api.get("/api/v1/project").status_code == 200  # Api-Key authentication never counts
        for _ in range(settings.AXES_FAILURE_LIMIT + 1):
            api.credentials(HTTP_AUTHORIZATION="Api-Key ntf_wrong")
            assert api.get("/api/v1/project").status_code == 401


class TestAuditFromCommands:
    def test_command_line_actions_are_in_the_audit_log_too(self):
        from io import StringIO

        from django.core.management import call_command

        dead = dead_delivery()
        call_command("dlq", "replay", "--id", str(dead.id), stdout=StringIO(), stderr=StringIO())
        call_command("create_api_key", "shop", "--name", "prod", stdout=StringIO(), stderr=StringIO())

        entries = {e.action: e for e in OperatorAuditEntry.objects.all()}
        assert entries["dead_letters.replay"].actor_label.startswith("cli:")
        assert (entries["dead_letters.replay"].count, entries["dead_letters.replay"].details["ids"]) == (1, [str(dead.id)])
        assert entries["api_key.create"].actor_label.startswith("cli:") and entries["api_key.create"].count == 1


def test_one_console_action_takes_at_most_its_limit_oldest_first_and_says_so(admin_client, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from apps.core import console

    monkeypatch.setattr(console, "MAX_ROWS_PER_ACTION", 2)
    now = timezone.now()
    oldest, older, newest = (dead_delivery(status_changed_at=now - timedelta(minutes=m)) for m in (30, 20, 10))
    selection = {"action": "replay", "select_across": "1", "_selected_action": [newest.id]}

    asked = admin_client.post(DEAD_LETTERS, selection).content.decode()
    admin_client.post(DEAD_LETTERS, {**selection, "confirmed": "yes"})

    assert "Replay 2 deliveries (the oldest 2 of 3" in asked
    statuses = [d.status for d in (oldest, older, newest) if not d.refresh_from_db()]
    assert statuses == [DeliveryStatus.QUEUED, DeliveryStatus.QUEUED, DeliveryStatus.DEAD]


def test_status_event_replay_takes_at_most_the_same_limit_oldest_first_and_says_so(admin_client, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from apps.core import console
    from apps.notifications.models import StatusEvent

    monkeypatch.setattr(console, "MAX_ROWS_PER_ACTION", 2, raising=False)
    delivery = DeliveryFactory(status=DeliveryStatus.CANCELLED)
    now = timezone.now()
    oldest, older, newest = (
        StatusEvent.objects.create(project=delivery.notification.project, delivery=delivery, sequence=n,
                                   delivery_status="cancelled", occurred_at=now - timedelta(minutes=m), status="dead")
        for n, m in ((1, 30), (2, 20), (3, 10))
    )
    url = reverse("admin:notifications_statusevent_changelist")
    selection = {"action": "replay", "select_across": "1", "_selected_action": [str(newest.id)]}

    asked = admin_client.post(url, selection).content.decode()
    admin_client.post(url, {**selection, "confirmed": "yes"})

    assert "Post 2 status webhook events (the oldest 2 of 3: at most 2 per action; run it again for the rest)" in asked
    assert [e.status for e in (oldest, older, newest) if not e.refresh_from_db()] == ["pending", "pending", "dead"]
    assert OperatorAuditEntry.objects.get(action="status_events.replay").count == 2
