"""A project's delivery policy through the API: frequency caps (deferred or skipped, exempt for
`high` and critical categories, not raced past by concurrent sends), critical categories the
users' preferences cannot turn off, and the create response saying why a delivery waits or not."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.notifications.intake.services import NotificationRequest, notifications_create
from apps.notifications.models import Delivery, Notification
from apps.projects.selectors import category_is_critical
from tests.templates.factories import EMAIL_PARTS, TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db

HOUR = 3600


@pytest.fixture
def ada(project):
    return RecipientFactory(project=project, external_id="ada")


@pytest.fixture(autouse=True)
def template(project):
    channels = {"email": dict(EMAIL_PARTS), "in_app": {"title": "Hi", "body": "News"}}
    return TemplateVersionFactory(template__project=project, template__key="news", channels=channels).template


def policy(api, **fields) -> dict:
    response = api.patch("/api/v1/project", fields, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def send(api, **body) -> dict:
    response = api.post("/api/v1/notifications", {"to": "ada", "template": "news", "channels": ["email"], **body},
                        format="json")
    assert response.status_code == 202, response.content
    return response.json()


def email_of(created: dict) -> dict:
    [delivery] = [d for d in created["deliveries"] if d["channel"] == "email"]
    return delivery


# --- The project's settings -------------------------------------------------------------------

def test_caps_and_critical_categories_are_stored_normalised_and_shown(api):
    body = policy(api, critical_categories=["security", "billing", "security"], frequency_caps=[
        {"category": "marketing", "limit": 3, "window": "1d"},
        {"category": "*", "limit": 10, "window": 3600, "over_cap": "skip"},
    ])

    assert body["critical_categories"] == ["security", "billing"]
    assert body["frequency_caps"] == [
        {"category": "marketing", "limit": 3, "window": 86400, "over_cap": "defer"},
        {"category": "*", "limit": 10, "window": 3600, "over_cap": "skip"},
    ]
    assert api.get("/api/v1/project").json()["frequency_caps"] == body["frequency_caps"]


@pytest.mark.parametrize("caps, where", [
    ([{"category": "marketing", "limit": 0, "window": "1h"}], ("0", "limit")),
    ([{"category": "marketing", "limit": 3, "window": "soon"}], ("0", "window")),
    ([{"category": "marketing", "limit": 3, "window": 0}], ("0", "window")),
    ([{"category": "marketing", "limit": 3, "window": "1h", "over_cap": "drop"}], ("0", "over_cap")),
    ([{"category": "", "limit": 3, "window": "1h"}], ("0", "category")),
    ([{"category": "a", "limit": 1, "window": 1}, {"category": "a", "limit": 2, "window": 2}], ("1", "category")),
    ([{"category": "a", "limit": 1, "window": 1, "per": "user"}], ("0", "per")),
    ([{"category": "a", "limit": True, "window": 1}], ("0", "limit")),
    ([{"category": "a\u0000", "limit": 1, "window": 1}], ("0", "category")),
])
def test_an_invalid_cap_is_a_400_naming_it_and_nothing_changes(api, caps, where):
    response = api.patch("/api/v1/project", {"frequency_caps": caps}, format="json")

    assert response.status_code == 400
    index, field = where
    assert field in response.json()["error"]["details"]["frequency_caps"][index]
    assert api.get("/api/v1/project").json()["frequency_caps"] == []


@pytest.mark.parametrize("value", ["security", [1], ["x" * 101], {"security": True}, ["nul\u0000"]])
def test_invalid_critical_categories_are_a_400(api, value):
    response = api.patch("/api/v1/project", {"critical_categories": value}, format="json")

    assert response.status_code == 400
    assert "critical_categories" in response.json()["error"]["details"]


# --- Critical categories ----------------------------------------------------------------------

def test_a_critical_category_is_sent_although_the_user_declined_it(api, ada, project):
    policy(api, critical_categories=["security"])
    put = api.put("/api/v1/users/ada/preferences", {"channels": {"in_app": False},
                                                    "categories": {"security": {"email": False}}}, format="json")
    assert put.status_code == 200

    security = send(api, category="security", channels=["email", "in_app"])
    news = send(api, category="news", channels=["email", "in_app"])

    assert {d["channel"]: d["status"] for d in security["deliveries"]} == {"email": "queued", "in_app": "queued"}
    assert {d["channel"]: d["skip_reason"] for d in news["deliveries"]} == {
        "email": "", "in_app": "the user turned in_app off"}
    # The preferences are kept as the user set them, and say which categories they cannot touch.
    shown = api.get("/api/v1/users/ada/preferences").json()
    assert shown["categories"] == {"security": {"email": False}}
    assert shown["critical_categories"] == ["security"]
    project.refresh_from_db()
    assert category_is_critical(project=project, category="security")
    assert not category_is_critical(project=project, category="news")
    assert not category_is_critical(project=project, category="")


# --- Reasons in the create response -----------------------------------------------------------

def test_the_create_response_and_bulk_items_say_why_a_delivery_is_skipped_or_held(api, ada):
    api.put("/api/v1/users/ada/preferences", {"categories": {"news": {"in_app": False}}}, format="json")
    policy(api, frequency_caps=[{"category": "news", "limit": 1, "window": "1h"}])

    first = send(api, category="news", channels=["email", "in_app"])
    bulk = api.post("/api/v1/notifications/bulk", {"notifications": [
        {"to": "ada", "template": "news", "channels": ["email"], "category": "news"},
    ]}, format="json").json()

    assert {d["channel"]: (d["status"], d["skip_reason"], d["hold_reason"]) for d in first["deliveries"]} == {
        "email": ("queued", "", ""),
        "in_app": ("skipped", "the user turned in_app off for 'news'", ""),
    }
    [held] = bulk["results"][0]["deliveries"]
    assert held["status"] == "pending"
    assert held["hold_reason"] == "held by the frequency cap (at most 1 'news' notifications per 3600 s)"
    assert held["skip_reason"] == ""
    # The GET says the same.
    detail = api.get(f"/api/v1/notifications/{bulk['results'][0]['id']}").json()
    assert detail["deliveries"][0]["hold_reason"] == held["hold_reason"]


# --- Frequency caps ---------------------------------------------------------------------------

def test_over_the_cap_a_notification_waits_until_the_oldest_one_leaves_the_window(api, ada):
    policy(api, frequency_caps=[{"category": "marketing", "limit": 2, "window": "1h"}])

    first, second, third = (send(api, category="marketing") for _ in range(3))
    other_category = send(api, category="news")

    assert [email_of(n)["status"] for n in (first, second, other_category)] == ["queued"] * 3
    assert email_of(third)["status"] == "pending"
    first_counted = Notification.objects.get(id=first["id"]).cap_counted_at
    held = Delivery.objects.get(id=email_of(third)["id"])
    assert held.next_attempt_at == first_counted + timedelta(seconds=HOUR)
    assert held.recheck_at == held.next_attempt_at  # the sweep releases it then
    assert api.get(f"/api/v1/notifications/{third['id']}").json()["status"] == "pending"


def test_over_a_skip_cap_a_notification_is_skipped_with_the_reason(api, ada):
    policy(api, frequency_caps=[{"category": "*", "limit": 1, "window": "1d", "over_cap": "skip"}])

    send(api, category="news")
    skipped = send(api, category="marketing")

    assert email_of(skipped)["status"] == "skipped"
    assert email_of(skipped)["skip_reason"] == "frequency cap: at most 1 notifications per 86400 s"
    assert skipped["status"] == "skipped"


def test_high_priority_and_critical_categories_are_exempt_and_not_counted(api, ada):
    policy(api, critical_categories=["security"],
           frequency_caps=[{"category": "*", "limit": 1, "window": "1h", "over_cap": "skip"}])

    code = send(api, category="security")
    alert = send(api, category="news", priority="high")
    news = send(api, category="news")
    more = send(api, category="news")

    assert [email_of(n)["status"] for n in (code, alert, news)] == ["queued"] * 3
    assert email_of(more)["status"] == "skipped"


def test_scheduled_sends_count_at_their_time_and_defer_from_it(api, ada):
    policy(api, frequency_caps=[{"category": "digest", "limit": 1, "window": "1h"}])
    at = (timezone.now() + timedelta(days=2)).replace(microsecond=0)

    now_one = send(api, category="digest")
    scheduled = send(api, category="digest", send_at=at.isoformat())
    scheduled_too = send(api, category="digest", send_at=at.isoformat())

    # The one sent now does not crowd a send two days later; two at the same time do.
    assert email_of(now_one)["status"] == "queued"
    assert email_of(scheduled)["hold_reason"] == ""
    held = api.get(f"/api/v1/notifications/{scheduled_too['id']}").json()["deliveries"][0]
    assert held["hold_reason"].startswith("held by the frequency cap")
    assert parse_datetime(held["next_attempt_at"]) == at + timedelta(hours=1)


def test_a_send_now_cannot_overfill_a_window_with_scheduled_sends_ahead(api, ada):
    """Two per hour, two scheduled in 30 and 50 minutes: one more now would make three within the
    hour ending at the second. It waits until the first scheduled one's hour has passed."""
    policy(api, frequency_caps=[{"category": "news", "limit": 2, "window": "1h"}])
    soon = (timezone.now() + timedelta(minutes=30)).replace(microsecond=0)
    later = soon + timedelta(minutes=20)
    send(api, category="news", send_at=soon.isoformat())
    send(api, category="news", send_at=later.isoformat())

    now_one = send(api, category="news")

    assert email_of(now_one)["status"] == "pending"
    held = Delivery.objects.get(id=email_of(now_one)["id"])
    assert held.next_attempt_at == soon + timedelta(hours=1)


def test_a_cancelled_notification_gives_its_slot_back(api, ada):
    policy(api, frequency_caps=[{"category": "news", "limit": 1, "window": "1h"}])
    at = (timezone.now() + timedelta(hours=5)).isoformat()
    scheduled = send(api, category="news", send_at=at)
    assert api.post(f"/api/v1/notifications/{scheduled['id']}/cancel").status_code == 200

    after = send(api, category="news", send_at=at)

    assert email_of(after)["hold_reason"] == ""


@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_cannot_both_take_the_last_slot(api, ada, project):
    """Two requests at once (threads with their own database connections, as two web processes):
    with one slot left, exactly one of five takes it and the others are skipped."""
    policy(api, frequency_caps=[{"category": "news", "limit": 2, "window": "1h", "over_cap": "skip"}])
    project.refresh_from_db()
    send(api, category="news")
    start = threading.Barrier(5)
    errors = []

    def create():
        try:
            start.wait()
            request = NotificationRequest(to="ada", template_key="news", channels=["email"], category="news")
            [outcome] = notifications_create(project=project, requests=[request])
            if isinstance(outcome, Exception):  # a request's own error is returned, not raised
                errors.append(outcome)
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    statuses = sorted(Delivery.objects.filter(notification__category="news").values_list("status", flat=True))
    assert statuses == ["queued", "queued"] + ["skipped"] * 4


# --- The admin ------------------------------------------------------------------------------------

def admin_save(admin_client, project, **policy):
    form = {"name": project.name, "default_locale": "en", "webhook_url": "", "status_webhook_url": "",
            "critical_categories": "[]", "frequency_caps": "[]",
            "api_keys-TOTAL_FORMS": "0", "api_keys-INITIAL_FORMS": "0", **policy}
    return admin_client.post(reverse("admin:projects_project_change", args=[project.id]), form)


def test_the_admin_sets_the_policy_by_the_same_rules(admin_client, project):
    refused = admin_save(admin_client, project, frequency_caps='[{"category": "promo", "limit": 0, "window": "1h"}]')
    assert refused.status_code == 200  # the form again, with the error
    assert "An integer from 1 to 1000." in refused.content.decode()

    saved = admin_save(admin_client, project, critical_categories='["security"]',
                       frequency_caps='[{"category": "promo", "limit": 2, "window": "1h"}]')

    assert saved.status_code == 302
    project.refresh_from_db()
    assert project.critical_categories == ["security"]
    assert project.frequency_caps == [{"category": "promo", "limit": 2, "window": 3600, "over_cap": "defer"}]
