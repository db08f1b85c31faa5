"""Workflows as versioned resources, and what the API refuses (nothing stored)."""

import pytest

from apps.notifications.models import Notification
from apps.workflows.models import WorkflowVersion
from tests.workflows.conftest import put_workflow

pytestmark = pytest.mark.django_db


def test_each_put_is_a_new_version_and_get_shows_the_newest(api, template):
    first = put_workflow(api, "fallback", template="alert", steps=[{"channel": "push"}])
    assert first.status_code == 201 and first.json()["version"] == 1
    second = put_workflow(api, "fallback", template="alert",
                          steps=[{"channel": "push"}, {"channel": "sms", "if": "not_delivered"}])
    assert second.status_code == 201 and second.json()["version"] == 2

    shown = api.get("/api/v1/workflows/fallback").json()
    assert shown["version"] == 2 and shown["template"] == "alert"
    assert shown["steps"] == [{"channel": "push"}, {"channel": "sms", "if": "not_delivered"}]


def test_waits_and_windows_take_durations_and_are_stored_in_seconds(api, template):
    response = put_workflow(api, "escalate", template="alert",
                            steps=[{"channel": "in_app"}, {"wait": "10m"}, {"channel": "email", "if": "unread"}],
                            digest={"window": "1h", "key": "thread", "max": 5})
    assert response.status_code == 201, response.content
    assert response.json()["steps"][1] == {"wait": 600}
    assert response.json()["digest"] == {"window": 3600, "key": "thread", "max": 5}


@pytest.mark.parametrize(("body", "field"), [
    ({"template": "nope", "steps": [{"channel": "email"}]}, "template"),
    ({"template": "alert", "steps": [{"channel": "fax"}]}, "steps[0].channel"),
    ({"template": "alert", "steps": [{"channel": "email"}, {"channel": "sms", "if": "unread"}]}, "steps[1].if"),
    ({"template": "alert", "steps": [{"channel": "in_app"}, {"wait": "31d"}]}, "steps[1].wait"),
    ({"template": "alert", "steps": [{"channel": "in_app"}, {"wait": 30 * 86400 + 1}]}, "steps[1].wait"),
    ({"template": "alert", "steps": [{"channel": "email"}] + [{"wait": 1}] * 20}, "steps"),
    ({"template": "alert", "steps": [{"channel": "email"}], "digest": {"window": "8d"}}, "digest.window"),
    ({"template": "alert", "steps": [{"channel": "email"}], "digest": {"schedule": {"at": "25:00"}}}, "digest.schedule"),
    ({"template": "alert", "steps": [{"channel": "email"}, {"channel": "email"}]}, "steps[1].channel"),
])
def test_a_bad_definition_is_refused_naming_the_field_and_nothing_is_stored(api, template, body, field):
    response = put_workflow(api, "bad", **body)

    assert response.status_code in (400, 422), response.content
    error = response.json()["error"]
    assert field in error["details"], error
    assert not WorkflowVersion.objects.exists()
    assert api.get("/api/v1/workflows/bad").status_code == 404


def test_a_missing_steps_list_is_a_400(api, template):
    response = put_workflow(api, "bad", template="alert")
    assert response.status_code == 400 and "steps" in response.json()["error"]["details"]


def test_a_notification_for_a_workflow_that_does_not_exist_is_refused(api, user, template):
    response = api.post("/api/v1/notifications", {"to": "ada", "workflow": "nope"}, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_workflow"
    assert response.json()["error"]["details"] == {"workflow": "nope"}
    assert not Notification.objects.exists()


def test_template_and_workflow_together_are_refused(api, user, template):
    put_workflow(api, "w", template="alert", steps=[{"channel": "email"}])
    response = api.post("/api/v1/notifications", {"to": "ada", "workflow": "w", "template": "alert"}, format="json")
    assert response.status_code == 400 and "template" in response.json()["error"]["details"]


def test_another_projects_workflow_is_not_found(api, template):
    from rest_framework.test import APIClient

    from tests.projects.factories import ApiKeyFactory

    put_workflow(api, "mine", template="alert", steps=[{"channel": "email"}])
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {ApiKeyFactory().raw_key}")
    assert other.get("/api/v1/workflows/mine").status_code == 404
