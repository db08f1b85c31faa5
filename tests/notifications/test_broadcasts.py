"""Broadcasts: one template to a list of users or an audience, fanned out in batches.

The fan-out is run here by calling the task's service with the broadcast's id, as the worker
does; tests/e2e/test_bulk_broadcast.py runs it in real worker processes.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.notifications.intake.broadcasts import _audience_page, broadcast_fan_out, broadcasts_resume_stale
from apps.notifications.models import Broadcast, Delivery, DeliveryStatus, Notification
from apps.users.models import Recipient
from tests.projects.factories import ApiKeyFactory, ProjectFactory
from tests.templates.factories import TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/broadcasts"


@pytest.fixture
def template(project):
    return TemplateVersionFactory(template__project=project, template__key="news").template


def start(api, idempotency_key: str = "", **body):
    headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}
    response = api.post(URL, {"template": "news", **body}, format="json", **headers)
    assert response.status_code == 202, response.content
    return response.json()


def fan_out(broadcast: dict, **options) -> dict:
    broadcast_fan_out(broadcast_id=broadcast["id"], **{"batch_size": 2, **options})
    return Broadcast.objects.get(id=broadcast["id"])


def notified(broadcast) -> dict[str, list[str]]:
    """External id -> statuses of the deliveries the broadcast created for that user."""
    found = {}
    for delivery in Delivery.objects.filter(notification__broadcast_id=broadcast.id).select_related("notification"):
        found.setdefault(delivery.notification.to, []).append(delivery.status)
    return found


def test_counts_match_and_each_users_preferences_and_contact_points_apply(api, project, template):
    RecipientFactory(project=project, external_id="u0")
    RecipientFactory(project=project, external_id="no-email", email="")
    RecipientFactory(project=project, external_id="declined", category_preferences={"weekly": {"email": False}})
    RecipientFactory(project=project, external_id="u3")

    accepted = start(api, to=["u0", "no-email", "ghost", "declined", "u3", "u0"], category="weekly")
    assert accepted["status"] == "pending" and accepted["total"] == 5  # the repeat of u0 counts once

    broadcast = fan_out(accepted)

    assert broadcast.status == "completed"
    assert (broadcast.total, broadcast.created, broadcast.skipped, broadcast.failed) == (5, 2, 3, 0)
    assert notified(broadcast) == {"u0": ["queued"], "u3": ["queued"], "declined": ["skipped"]}
    declined = Delivery.objects.get(notification__to="declined")
    assert declined.skip_reason == "the user turned email off for 'weekly'"
    body = api.get(f"{URL}/{broadcast.id}").json()
    assert (body["status"], body["total"], body["created"], body["skipped"]) == ("completed", 5, 2, 3)


def test_quiet_hours_hold_a_broadcasts_deliveries_as_any_others(api, project, template):
    now = timezone.now()
    RecipientFactory(project=project, external_id="sleeping", quiet_hours_start=(now - timedelta(hours=1)).time(),
                     quiet_hours_end=(now + timedelta(hours=1)).time())

    broadcast = fan_out(start(api, to=["sleeping"]))

    assert notified(broadcast) == {"sleeping": ["pending"]}
    assert broadcast.created == 1


@pytest.mark.parametrize(
    ("audience", "expected"),
    [
        ({"all": True}, {"fr-mail", "fr-phone-only", "en-mail"}),
        ({"locale": "fr"}, {"fr-mail", "fr-phone-only"}),
        ({"has_channel": "sms"}, {"fr-phone-only"}),
        ({"locale": "fr", "has_channel": "email"}, {"fr-mail"}),
    ],
)
def test_an_audience_picks_the_projects_users_it_names(api, project, audience, expected):
    TemplateVersionFactory(template__project=project, template__key="news",
                           channels={"in_app": {"title": "Hi", "body": "News"}})
    RecipientFactory(project=project, external_id="fr-mail", locale="fr")
    RecipientFactory(project=project, external_id="fr-phone-only", locale="fr", email="", phone="+14155550123")
    RecipientFactory(project=project, external_id="en-mail", locale="en")
    RecipientFactory(external_id="another-projects-user", locale="fr")

    broadcast = fan_out(start(api, audience=audience))

    assert set(notified(broadcast)) == expected
    assert broadcast.total == broadcast.created == len(expected)


def test_a_fan_out_run_twice_or_resumed_notifies_each_user_once(api, project, template):
    for n in range(7):
        RecipientFactory(project=project, external_id=f"u{n}")
    accepted = start(api, audience={"all": True})

    first = fan_out(accepted, run_seconds=0.000001)  # one batch, then it hands over
    assert first.status == "running" and first.created == 2
    fan_out(accepted)
    done = fan_out(accepted)  # a redelivered message after the end: nothing to do

    assert done.status == "completed" and done.created == 7
    assert Notification.objects.filter(broadcast_id=done.id).count() == 7


def test_cancel_stops_the_fan_out_and_cancels_what_it_created(api, project, template):
    for n in range(6):
        RecipientFactory(project=project, external_id=f"u{n}")
    accepted = start(api, audience={"all": True})
    fan_out(accepted, run_seconds=0.000001)

    response = api.post(f"{URL}/{accepted['id']}/cancel")

    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    broadcast = fan_out(accepted)
    assert broadcast.status == "cancelled" and broadcast.created == 2
    assert notified(broadcast) == {"u0": ["cancelled"], "u1": ["cancelled"]}


def test_cancel_after_completion_cancels_the_deliveries_still_waiting(api, project, template):
    RecipientFactory(project=project, external_id="u0")
    accepted = start(api, to=["u0"], send_at=(timezone.now() + timedelta(hours=2)).isoformat())
    assert notified(fan_out(accepted)) == {"u0": ["pending"]}

    api.post(f"{URL}/{accepted['id']}/cancel")

    assert notified(Broadcast.objects.get(id=accepted["id"])) == {"u0": ["cancelled"]}


def test_an_idempotency_key_returns_the_first_broadcast_or_a_409(api, project, template):
    first = start(api, idempotency_key="spring", to=["u0"])

    assert start(api, idempotency_key="spring", to=["u0"])["id"] == first["id"]
    response = api.post(URL, {"template": "news", "to": ["u1"]}, format="json", HTTP_IDEMPOTENCY_KEY="spring")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Broadcast.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "to"),
        ({"to": ["u0"], "audience": {"all": True}}, "to"),
        ({"to": []}, "to"),
        ({"to": [f"u{n}" for n in range(10_001)]}, "to"),
        ({"to": "u0"}, "to"),
        ({"audience": {}}, "audience"),
        ({"audience": {"all": False}}, "audience"),
        ({"audience": {"all": True, "locale": "fr"}}, "audience"),
        ({"audience": {"plan": "pro"}}, "audience"),
        ({"audience": {"has_channel": "fax"}}, "audience"),
        ({"audience": ["all"]}, "audience"),
    ],
)
def test_a_broadcast_names_either_users_or_an_audience(api, template, body, field):
    response = api.post(URL, {"template": "news", **body}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid"
    assert field in response.json()["error"]["details"]
    assert not Broadcast.objects.exists()


def test_a_broadcast_that_could_reach_nobody_is_refused_up_front(api, template):
    response = api.post(URL, {"template": "nope", "audience": {"all": True}}, format="json")
    assert response.status_code == 422 and response.json()["error"]["code"] == "unknown_template"
    response = api.post(URL, {"template": "news", "channels": ["sms"], "audience": {"all": True}}, format="json")
    assert response.status_code == 422 and response.json()["error"]["code"] == "channel_unavailable"
    assert not Broadcast.objects.exists()


def test_another_projects_broadcast_is_not_found(api, template):
    other = ApiKeyFactory()
    TemplateVersionFactory(template__project=other.project, template__key="news")
    foreign = Broadcast.objects.create(project=other.project, template=other.project.templates.get(),
                                       audience={"all": True}, heartbeat_at=timezone.now())

    assert api.get(f"{URL}/{foreign.id}").status_code == 404
    assert api.post(f"{URL}/{foreign.id}/cancel").status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == "pending"


def test_the_sweep_takes_back_only_fan_outs_that_went_silent(project, template, settings):
    settings.NOTIFIER_BROADCAST_STALE_SECONDS = 60
    now = timezone.now()
    silent = Broadcast.objects.create(project=project, template=template, audience={"all": True},
                                      status="running", heartbeat_at=now - timedelta(minutes=5))
    alive = Broadcast.objects.create(project=project, template=template, audience={"all": True},
                                     status="running", heartbeat_at=now)
    done = Broadcast.objects.create(project=project, template=template, audience={"all": True},
                                    status="completed", heartbeat_at=now - timedelta(minutes=5))

    assert broadcasts_resume_stale() == 1

    silent.refresh_from_db()
    assert silent.heartbeat_at >= now  # the next sweep waits a whole stale period again
    for untouched in (alive, done):
        assert Broadcast.objects.get(id=untouched.id).heartbeat_at == untouched.heartbeat_at
    assert broadcasts_resume_stale() == 0


def test_deliveries_of_a_broadcast_are_cancellable_but_one_being_sent_goes_on(api, project, template):
    RecipientFactory(project=project, external_id="u0")
    RecipientFactory(project=project, external_id="u1")
    broadcast = fan_out(start(api, to=["u0", "u1"]))
    Delivery.objects.filter(notification__to="u1").update(status=DeliveryStatus.SENDING)

    api.post(f"{URL}/{broadcast.id}/cancel")

    assert notified(broadcast) == {"u0": ["cancelled"], "u1": ["sending"]}


def test_every_notification_of_a_broadcast_carries_the_broadcast_requests_correlation_id(api, project, template):
    for n in range(3):
        RecipientFactory(project=project, external_id=f"c{n}")
    response = api.post(URL, {"template": "news", "to": ["c0", "c1", "c2"]}, format="json",
                        HTTP_X_REQUEST_ID="campaign-42")
    assert response.status_code == 202 and response["X-Request-ID"] == "campaign-42"

    broadcast = fan_out(response.json())

    assert set(Notification.objects.filter(broadcast=broadcast).values_list("correlation_id", flat=True)) == {
        "campaign-42"}


def _planner_row_estimate(model) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        return cursor.fetchone()[0]


# ANALYZE writes its estimates in place, outside the test's transaction: each case counts other users.
@pytest.mark.parametrize(("users", "analyze_after", "refreshed"), [(3, 3, True), (5, 6, False)])
def test_a_large_fan_out_leaves_the_planner_statistics_of_what_it_wrote(api, project, template, settings,
                                                                         users, analyze_after, refreshed):
    """Without it, statements on deliveries by id planned with the table as it was before the fan-out
    (docs/performance.md: 6.2 ms a statement against 0.37)."""
    settings.NOTIFIER_BROADCAST_ANALYZE_AFTER = analyze_after
    for n in range(users):
        RecipientFactory(project=project, external_id=f"u{n}")
    broadcast = fan_out(start(api, to=[f"u{n}" for n in range(users)]))
    assert broadcast.created == users
    estimates = {model: _planner_row_estimate(model) for model in (Notification, Delivery)}
    counts = {model: model.objects.count() for model in (Notification, Delivery)}
    assert (estimates == counts) is refreshed


def _plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def test_a_page_of_a_small_projects_audience_is_read_in_order_from_its_own_users(api, project, template):
    """Its users sit between a larger project's. A page must not walk past the other project's users
    (the primary key) nor fetch and sort all of its own past the cursor (the project's index): the
    cost of a page then grows with the other tenants, and with every page (docs/performance.md)."""
    other = ProjectFactory()
    Recipient.objects.bulk_create(
        Recipient(project=project if n % 50 == 0 else other, external_id=f"k{n}", email=f"k{n}@example.com")
        for n in range(10_000)
    )
    broadcast = Broadcast.objects.get(id=start(api, audience={"all": True})["id"])
    broadcast.cursor = Recipient.objects.filter(project=project).order_by("id").values_list("id", flat=True)[50]
    sql, params = _audience_page(broadcast, 100).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Recipient._meta.db_table}")
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        nodes = list(_plan_nodes(cursor.fetchone()[0][0]["Plan"]))

    users_scan = next(node for node in nodes if node.get("Relation Name") == Recipient._meta.db_table)
    assert users_scan.get("Index Name") == "recipient_project_keyset", users_scan
    assert users_scan.get("Rows Removed by Filter", 0) == 0 and users_scan["Actual Rows"] == 100
    assert not [node for node in nodes if node["Node Type"] == "Sort"]
