"""Digests: the notifications for one user (and one key value) within a window become one run."""

import threading

import pytest
from django.db import connection

from apps.notifications.intake.services import NotificationRequest, notifications_create
from apps.notifications.models import Delivery
from apps.templates.selectors import template_version_current
from apps.templates.services import template_version_render
from apps.workflows.models import RunEvent, WorkflowRun
from tests.workflows.conftest import put_workflow
from tests.workflows.helpers import start, travel, work

pytestmark = pytest.mark.django_db

DIGEST_EMAIL = {"subject": "{{ event_count }} new comments",
                "text": "Hi {{ name }}:{% for e in events %} [{{ e.n }}]{% endfor %} ({{ event_count }})"}


@pytest.fixture
def digest_template(api):
    assert api.put("/api/v1/templates/digest", {"channels": {"email": DIGEST_EMAIL}}, format="json").status_code == 201


def comment(api, n: int, **data):
    response = start(api, "comments", data={"name": "Ada", "n": n, **data})
    assert response.status_code == 202, response.content
    return response.json()["id"]


def test_notifications_within_the_window_arrive_as_one_email_listing_them(api, user, digest_template, channels):
    put_workflow(api, "comments", template="digest", steps=[{"channel": "email"}], digest={"window": "15s"})
    ids = [comment(api, n) for n in range(1, 4)]
    work()
    assert channels == []  # still collecting
    assert api.get(f"/api/v1/notifications/{ids[1]}").json()["status"] == "pending"

    travel(16)
    work()
    [email] = channels
    assert email.content["subject"] == "3 new comments"
    assert email.content["text"] == "Hi Ada: [1] [2] [3] (3)"
    runs = {api.get(f"/api/v1/notifications/{i}").json()["workflow"]["run"] for i in ids}
    assert len(runs) == 1 and WorkflowRun.objects.count() == 1
    joined = api.get(f"/api/v1/notifications/{ids[2]}").json()
    assert joined["status"] == "sent"  # the digest's email, which it joined, went
    joined = joined["workflow"]
    assert joined["joined"] is True and joined["position"] == 3 and joined["notification"] == ids[0]
    assert Delivery.objects.count() == 1


def test_a_key_keeps_one_digest_per_value(api, user, digest_template, channels):
    put_workflow(api, "comments", template="digest", steps=[{"channel": "email"}],
                 digest={"window": 60, "key": "thread"})
    comment(api, 1, thread="a")
    comment(api, 2, thread="b")
    comment(api, 3, thread="a")
    travel(61)
    work()
    assert sorted(m.content["text"] for m in channels) == ["Hi Ada: [1] [3] (2)", "Hi Ada: [2] (1)"]


def test_max_closes_the_digest_early_and_the_next_event_opens_another(api, user, digest_template, channels):
    put_workflow(api, "comments", template="digest", steps=[{"channel": "email"}], digest={"window": "1h", "max": 2})
    comment(api, 1)
    comment(api, 2)
    comment(api, 3)
    work()
    assert [m.content["text"] for m in channels] == ["Hi Ada: [1] [2] (2)"]
    assert WorkflowRun.objects.filter(state="collecting").count() == 1


def test_preferences_are_read_when_the_digest_is_sent(api, user, digest_template, channels):
    put_workflow(api, "comments", template="digest", steps=[{"channel": "email"}], digest={"window": 30})
    comment(api, 1)
    assert api.put("/api/v1/users/ada/preferences", {"channels": {"email": False}}, format="json").status_code == 200
    travel(31)
    work()
    assert channels == [] and Delivery.objects.get().status == "skipped"


def test_a_scheduled_digest_is_due_at_the_next_time_of_day_in_the_users_timezone(api, user, digest_template):
    from zoneinfo import ZoneInfo

    user.timezone = "Asia/Tokyo"
    user.save()
    put_workflow(api, "comments", template="digest", steps=[{"channel": "email"}], digest={"schedule": {"at": "09:00"}})
    comment(api, 1)
    due = WorkflowRun.objects.get().due_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert (due.hour, due.minute) == (9, 0)


def test_a_for_loop_over_1000_events_renders_within_the_budgets(api, user, digest_template):
    version = template_version_current(project=user.project, key="digest")
    data = {"name": "Ada", "events": [{"n": n} for n in range(1000)], "event_count": 1000}
    rendered = template_version_render(version=version, channel="email", data=data)
    assert rendered["text"].count("[") == 1000 and rendered["text"].endswith("(1000)")


@pytest.mark.django_db(transaction=True)
def test_events_arriving_at_once_join_one_digest(api, user, digest_template):
    put_workflow(api, "comments", template="digest", steps=[{"channel": "email"}], digest={"window": "1h"})
    barrier = threading.Barrier(6)
    errors = []

    def send(n):
        try:
            barrier.wait()
            [outcome] = notifications_create(project=user.project, requests=[
                NotificationRequest(to="ada", template_key="", workflow_key="comments", data={"name": "Ada", "n": n})])
            assert not isinstance(outcome, Exception), outcome
        except Exception as exc:  # reported below: a thread's assertion does not fail the test by itself
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert WorkflowRun.objects.count() == 1
    assert sorted(RunEvent.objects.values_list("position", flat=True)) == [1, 2, 3, 4, 5, 6]


def test_a_digest_of_1000_events_previews_in_the_sandbox(api, user, digest_template):
    data = {"name": "Ada", "events": [{"n": n} for n in range(1000)], "event_count": 1000}
    response = api.post("/api/v1/templates/digest/preview", {"data": data}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["channels"]["email"]["text"].count("[") == 1000
