import pytest

from apps.core.models import OperatorAuditEntry
from apps.notifications.models import Delivery, DeliveryAttempt, Notification
from tests.templates.factories import TemplateVersionFactory

pytestmark = pytest.mark.django_db


def test_put_creates_then_updates_only_the_fields_given(api):
    created = api.put("/api/v1/users/ada", {"email": "ada@example.com", "name": "Ada", "timezone": "Europe/Paris"},
                      format="json")
    assert created.status_code == 201
    assert created.json()["id"] == "ada"

    updated = api.put("/api/v1/users/ada", {"phone": "+14155550123"}, format="json")
    assert updated.status_code == 200
    body = api.get("/api/v1/users/ada").json()
    assert (body["email"], body["name"], body["phone"], body["timezone"]) == (
        "ada@example.com", "Ada", "+14155550123", "Europe/Paris")


@pytest.mark.parametrize(
    ("field", "value"),
    [("phone", "0612345678"), ("phone", "+1 nope"), ("email", "not-an-email"), ("timezone", "Mars/Olympus"),
     ("locale", "english please"), ("data", [1, 2])],
)
def test_invalid_fields_are_refused_with_the_field_named(api, field, value):
    response = api.put("/api/v1/users/ada", {field: value}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert field in response.json()["error"]["details"]


@pytest.mark.parametrize(
    "data",
    [r'{"k": "a\u0000b"}', r'{"a\u0000": 1}', r'{"k": {"l": ["\u0000"]}}', r'{"k": "\udc00"}', '{"k": -1e999}',
     '{"k": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}"],
)
def test_data_postgresql_cannot_store_is_refused_with_the_field_named(api, data):
    response = api.put("/api/v1/users/ada", '{"data": ' + data + "}", content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid"
    assert "data" in response.json()["error"]["details"]
    assert api.get("/api/v1/users/ada").status_code == 404


def test_data_keeps_any_storable_json(api):
    data = {"plan": "pro", "seats": 3, "ratio": 0.5, "tags": ["a", "é", "😀"], "nested": {"ok": None, "yes": True}}
    assert api.put("/api/v1/users/ada", {"data": data}, format="json").status_code == 201
    assert api.get("/api/v1/users/ada").json()["data"] == data


def test_phone_numbers_are_stored_in_e164(api):
    api.put("/api/v1/users/ada", {"phone": "+44 20 7946 0958"}, format="json")
    assert api.get("/api/v1/users/ada").json()["phone"] == "+442079460958"


def test_unknown_user_is_404(api):
    response = api.get("/api/v1/users/nobody")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_delete_erases_the_user_and_scrubs_the_delivery_log_but_keeps_its_statuses(api, api_key, project):
    api.put("/api/v1/users/ada", {"email": "ada@example.com"}, format="json")
    TemplateVersionFactory(template__project=project, template__key="welcome")
    notification_id = api.post("/api/v1/notifications", {"to": "ada", "template": "welcome", "data": {"code": "991"}},
                               format="json").json()["id"]
    delivery = Delivery.objects.get(notification_id=notification_id)
    DeliveryAttempt.objects.create(delivery=delivery, number=1, started_at=delivery.created_at, outcome="permanent_error",
                                   error_code="550", error_message="550 mailbox ada@example.com unavailable")
    Delivery.objects.filter(id=delivery.id).update(status="failed", last_error_code="550",
                                                   last_error="550 mailbox ada@example.com unavailable")

    assert api.delete("/api/v1/users/ada").status_code == 204

    assert api.get("/api/v1/users/ada").status_code == 404
    logged = api.get(f"/api/v1/notifications/{notification_id}").json()
    assert (logged["to"], logged["data"], logged["status"]) == ("ada", {}, "failed")
    [logged_delivery] = logged["deliveries"]
    assert "ada@example.com" not in str(logged_delivery)
    assert logged_delivery["attempts"][0]["error_code"] == "550"
    assert logged_delivery["last_error"] == {"code": "550", "message": ""}
    assert Notification.objects.get(id=notification_id).recipient is None
    entry = OperatorAuditEntry.objects.get(action="users.erase")
    assert (entry.actor_label, entry.details["ids"]) == (f"api_key:{api_key.prefix}", [f"{project.name}/ada"])
