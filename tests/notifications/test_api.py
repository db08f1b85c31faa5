"""The notifications API as a product backend sees it: validation, auth, isolation, idempotency."""

import pytest
from rest_framework.test import APIClient

from apps.notifications.models import Delivery, Notification
from apps.templates.models import TemplateVersion
from apps.users.models import Recipient
from tests.projects.factories import ApiKeyFactory
from tests.templates.factories import TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(project):
    return RecipientFactory(project=project, external_id="ada", email="ada@example.com")


@pytest.fixture
def template(project):
    return TemplateVersionFactory(template__project=project, template__key="welcome").template


def send(api, idempotency_key: str = "", **body):
    headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}
    return api.post("/api/v1/notifications", {"to": "ada", "template": "welcome", **body}, format="json", **headers)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert isinstance(error["details"], dict)
    return error


def test_a_valid_request_is_accepted_with_one_queued_delivery_per_channel(api, user, template):
    response = send(api, data={"name": "Ada"})

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "processing"
    assert [(d["channel"], d["status"]) for d in body["deliveries"]] == [("email", "queued")]
    notification = Notification.objects.get(id=body["id"])
    assert notification.data == {"name": "Ada"} and notification.to == "ada"


def test_accepting_a_notification_is_at_most_three_queries(api, user, template, django_assert_max_num_queries):
    # The API key (unless this process has it cached), the user (with whether they have a device
    # for push) and the template's newest versions in one statement, and one INSERT of the
    # notification with its deliveries: the answer is built from what was inserted, nothing is
    # read back. The key's last use is written at most once a minute: a key in use (as here
    # after the first request) costs no write.
    assert api.get("/api/v1/project").status_code == 200
    with django_assert_max_num_queries(3) as queries:
        assert send(api).status_code == 202
    [read] = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT") and "UNION ALL" in q["sql"]]
    assert f'"{Recipient._meta.db_table}"' in read and f'"{TemplateVersion._meta.db_table}"' in read


def test_an_idempotency_key_adds_only_a_savepoint(api, user, template, django_assert_max_num_queries):
    # The key is checked by the unique index during the INSERT, not by a lookup before it.
    assert api.get("/api/v1/project").status_code == 200  # the API key's last use is fresh: no write
    with django_assert_max_num_queries(5) as queries:
        assert send(api, idempotency_key="k1").status_code == 202
    assert sum("SAVEPOINT" in q["sql"] for q in queries.captured_queries) == 2


class TestValidation:
    def test_unknown_template(self, api, user):
        error = assert_error(send(api, template="nope"), 422, "unknown_template")
        assert error["details"] == {"template": "nope"}

    def test_unknown_user(self, api, template):
        error = assert_error(send(api, to="nobody"), 422, "unknown_user")
        assert error["details"] == {"to": "nobody"}

    def test_unknown_user_and_template_name_the_user(self, api):
        # The user is checked first, whether the one read found the template or not.
        error = assert_error(send(api, to="nobody", template="nope"), 422, "unknown_user")
        assert error["details"] == {"to": "nobody"}

    def test_a_user_without_email_for_an_email_only_send(self, api, project, template):
        RecipientFactory(project=project, external_id="ada", email="")
        error = assert_error(send(api, channels=["email"]), 422, "no_deliverable_channel")
        assert "email" in error["details"]
        assert not Notification.objects.exists()

    def test_a_channel_the_template_has_no_part_for(self, api, user, template):
        error = assert_error(send(api, channels=["sms"]), 422, "channel_unavailable")
        assert "sms" in error["details"]

    def test_malformed_json(self, api, user, template):
        response = api.post("/api/v1/notifications", '{"to": "ada", "template": ', content_type="application/json")
        assert_error(response, 400, "malformed_request")

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"to": 123, "template": "welcome", "data": "not an object"}, "data"),
            ({"to": "ada", "template": "welcome", "channels": "email"}, "channels"),
            ({"to": "ada", "template": "welcome", "channels": ["fax"]}, "channels"),
            ({"to": "ada", "template": "welcome", "priority": "urgent"}, "priority"),
            ({"to": "ada", "template": "welcome", "send_at": "tomorrow"}, "send_at"),
            ({"template": "welcome"}, "to"),
            ({"to": ["ada"], "template": "welcome"}, "to"),
        ],
    )
    def test_wrong_types_name_the_field(self, api, user, template, body, field):
        error = assert_error(api.post("/api/v1/notifications", body, format="json"), 400, "invalid")
        assert field in error["details"]

    @pytest.mark.parametrize(
        "data",
        [
            r'{"k": "a\u0000b"}',  # PostgreSQL's jsonb cannot hold NUL
            r'{"a\u0000": 1}',
            r'{"k": [{"deeper": ["\u0000"]}]}',
            r'{"k": "\ud800"}',  # an unpaired surrogate
            '{"k": 1e400}',  # parses to infinity
            '{"k": ' + "[" * 40 + "]" * 40 + "}",
        ],
    )
    def test_data_postgresql_cannot_store_names_the_field(self, api, user, template, data):
        body = '{"to": "ada", "template": "welcome", "data": ' + data + "}"
        error = assert_error(api.post("/api/v1/notifications", body, content_type="application/json"), 400, "invalid")
        assert "data" in error["details"]
        assert not Notification.objects.exists()

    def test_a_json_array_instead_of_an_object(self, api, user, template):
        assert_error(api.post("/api/v1/notifications", [1, 2], format="json"), 400, "invalid")

    def test_form_encoded_body_is_refused(self, api, user, template):
        response = api.post("/api/v1/notifications", "to=ada", content_type="application/x-www-form-urlencoded")
        assert_error(response, 415, "unsupported_media_type")


class TestAuth:
    def test_no_key(self, user, template):
        response = APIClient().post("/api/v1/notifications", {"to": "ada", "template": "welcome"}, format="json")
        assert_error(response, 401, "not_authenticated")
        assert response["WWW-Authenticate"] == "Api-Key"

    def test_wrong_key(self, user, template):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Api-Key ntf_not-a-real-key")
        assert_error(client.get("/api/v1/notifications"), 401, "authentication_failed")

    def test_a_revoked_key(self, api, api_key):
        api_key.revoked_at = api_key.created_at
        api_key.save()
        assert_error(api.get("/api/v1/notifications"), 401, "authentication_failed")

    def test_another_projects_notification_is_not_found(self, api, user, template):
        notification_id = send(api).json()["id"]
        other = APIClient()
        other.credentials(HTTP_AUTHORIZATION=f"Api-Key {ApiKeyFactory().raw_key}")

        assert_error(other.get(f"/api/v1/notifications/{notification_id}"), 404, "not_found")
        assert_error(other.post(f"/api/v1/notifications/{notification_id}/cancel"), 404, "not_found")
        assert other.get("/api/v1/notifications").json()["results"] == []

    def test_another_projects_user_and_template_cannot_be_used(self, user, template):
        other = APIClient()
        other.credentials(HTTP_AUTHORIZATION=f"Api-Key {ApiKeyFactory().raw_key}")
        assert_error(other.get("/api/v1/users/ada"), 404, "not_found")
        assert_error(other.get("/api/v1/templates/welcome"), 404, "not_found")
        response = other.post("/api/v1/notifications", {"to": "ada", "template": "welcome"}, format="json")
        assert_error(response, 422, "unknown_user")


class TestIdempotency:
    def test_a_repeat_with_the_same_key_and_body_returns_the_first_notification(self, api, user, template):
        first = send(api, data={"n": 1}, idempotency_key="order-42")
        again = api.post("/api/v1/notifications", {"data": {"n": 1}, "template": "welcome", "to": "ada"},
                         format="json", HTTP_IDEMPOTENCY_KEY="order-42")

        assert first.status_code == again.status_code == 202
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["deliveries"] == first.json()["deliveries"]
        assert Notification.objects.count() == 1 and Delivery.objects.count() == 1

    def test_the_same_key_with_another_body_is_a_conflict(self, api, user, template):
        send(api, data={"n": 1}, idempotency_key="order-42")
        assert_error(send(api, data={"n": 2}, idempotency_key="order-42"), 409, "idempotency_key_reused")
        assert Notification.objects.count() == 1

    def test_keys_are_per_project(self, api, user, template):
        send(api, idempotency_key="k")
        other_key = ApiKeyFactory()
        RecipientFactory(project=other_key.project, external_id="ada")
        TemplateVersionFactory(template__project=other_key.project, template__key="welcome")
        other = APIClient()
        other.credentials(HTTP_AUTHORIZATION=f"Api-Key {other_key.raw_key}")

        response = other.post("/api/v1/notifications", {"to": "ada", "template": "welcome"}, format="json",
                              HTTP_IDEMPOTENCY_KEY="k")
        assert response.status_code == 202
        assert Notification.objects.count() == 2


class TestReading:
    def test_detail_shows_deliveries_with_attempts(self, api, user, template):
        notification_id = send(api).json()["id"]
        body = api.get(f"/api/v1/notifications/{notification_id}").json()
        assert body["to"] == "ada" and body["template"] == "welcome"
        assert body["deliveries"][0]["attempts"] == [] and body["deliveries"][0]["last_error"] is None

    def test_list_filters_and_pages(self, api, project, user, template):
        RecipientFactory(project=project, external_id="bob")
        ids = [send(api).json()["id"] for _ in range(3)] + [send(api, to="bob").json()["id"]]

        page = api.get("/api/v1/notifications", {"to": "ada", "limit": 2}).json()
        assert [n["id"] for n in page["results"]] == ids[2::-1][:2]
        rest = api.get(page["next"]).json()
        assert [n["id"] for n in rest["results"]] == [ids[0]]
        assert api.get("/api/v1/notifications", {"status": "sent"}).json()["results"] == []
        assert len(api.get("/api/v1/notifications", {"status": "queued", "channel": "email"}).json()["results"]) == 4
        assert_error(api.get("/api/v1/notifications", {"status": "lost"}), 400, "invalid")

    def test_unknown_or_malformed_id_is_not_found(self, api):
        assert_error(api.get("/api/v1/notifications/7d8d85dd-b016-4ad4-86af-a79feff9af95"), 404, "not_found")
        assert api.get("/api/v1/notifications/not-a-uuid").status_code == 404


def test_cancel_stops_deliveries_not_yet_sent(api, user, template):
    notification_id = send(api).json()["id"]
    body = api.post(f"/api/v1/notifications/{notification_id}/cancel").json()
    assert body["status"] == "cancelled"
    assert [d["status"] for d in body["deliveries"]] == ["cancelled"]
