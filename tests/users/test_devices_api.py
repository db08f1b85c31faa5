"""The devices API: the push tokens of a user's app instances."""

import pytest
from rest_framework.test import APIClient

from apps.users.services import device_deactivate
from tests.projects.factories import ApiKeyFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db

TOKEN = "fcm:APA91bH-example_token.0123456789"


@pytest.fixture
def ada(project):
    return RecipientFactory(project=project, external_id="ada")


def devices_of(api, user: str) -> list[dict]:
    return api.get(f"/api/v1/users/{user}").json()["devices"]


def test_registering_a_new_token_is_201_and_the_user_lists_it(api, ada):
    response = api.post("/api/v1/users/ada/devices", {"token": TOKEN, "platform": "android"}, format="json")

    assert response.status_code == 201
    assert response.json()["token"] == TOKEN
    assert [(d["token"], d["platform"], d["active"]) for d in devices_of(api, "ada")] == [(TOKEN, "android", True)]


def test_registering_a_known_token_again_is_200_and_reactivates_it(api, ada):
    first = api.post("/api/v1/users/ada/devices", {"token": TOKEN, "platform": "android"}, format="json")
    device_deactivate(device_id=ada.devices.get().id)  # FCM said UNREGISTERED; the app then got it again

    again = api.post("/api/v1/users/ada/devices", {"token": TOKEN, "platform": "android"}, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert [d["active"] for d in devices_of(api, "ada")] == [True]


def test_a_user_has_several_devices_on_several_platforms(api, ada):
    for token, platform in [("t-android", "android"), ("t-ios", "ios"), ("t-web", "web")]:
        assert api.post("/api/v1/users/ada/devices", {"token": token, "platform": platform},
                        format="json").status_code == 201

    assert sorted((d["token"], d["platform"]) for d in devices_of(api, "ada")) == [
        ("t-android", "android"), ("t-ios", "ios"), ("t-web", "web")]


def test_a_token_registered_by_another_user_moves_to_them(api, ada, project):
    RecipientFactory(project=project, external_id="bob")
    api.post("/api/v1/users/ada/devices", {"token": TOKEN, "platform": "ios"}, format="json")

    # Bob signs in on the phone Ada used: her notifications must not reach him.
    assert api.post("/api/v1/users/bob/devices", {"token": TOKEN, "platform": "ios"}, format="json").status_code == 201

    assert devices_of(api, "ada") == []
    assert [d["token"] for d in devices_of(api, "bob")] == [TOKEN]


def test_the_same_token_in_another_project_is_not_touched(api, ada):
    other_key = ApiKeyFactory()
    RecipientFactory(project=other_key.project, external_id="ada")
    other_project = APIClient()
    other_project.credentials(HTTP_AUTHORIZATION=f"Api-Key {other_key.raw_key}")
    api.post("/api/v1/users/ada/devices", {"token": TOKEN, "platform": "web"}, format="json")

    response = other_project.post("/api/v1/users/ada/devices", {"token": TOKEN, "platform": "web"}, format="json")

    assert response.status_code == 201
    assert [d["token"] for d in devices_of(api, "ada")] == [TOKEN]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"token": TOKEN, "platform": "blackberry"}, "platform"),
        ({"token": TOKEN}, "platform"),
        ({"platform": "ios"}, "token"),
        ({"token": "", "platform": "ios"}, "token"),
        ({"token": "a/b", "platform": "ios"}, "token"),
        ({"token": "x" * 513, "platform": "ios"}, "token"),
    ],
)
def test_invalid_registrations_are_400_naming_the_field(api, ada, body, field):
    response = api.post("/api/v1/users/ada/devices", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


def test_registering_for_an_unknown_user_is_404(api):
    response = api.post("/api/v1/users/nobody/devices", {"token": TOKEN, "platform": "ios"}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_removing_a_device_is_204_then_404(api, ada):
    api.post("/api/v1/users/ada/devices", {"token": TOKEN, "platform": "android"}, format="json")

    assert api.delete(f"/api/v1/users/ada/devices/{TOKEN}").status_code == 204
    assert devices_of(api, "ada") == []
    again = api.delete(f"/api/v1/users/ada/devices/{TOKEN}")
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "not_found"


def test_removing_another_users_device_is_404(api, ada, project):
    RecipientFactory(project=project, external_id="bob")
    api.post("/api/v1/users/bob/devices", {"token": TOKEN, "platform": "android"}, format="json")

    assert api.delete(f"/api/v1/users/ada/devices/{TOKEN}").status_code == 404
    assert [d["token"] for d in devices_of(api, "bob")] == [TOKEN]


def test_deleting_the_user_deletes_their_devices(api, ada):
    api.post("/api/v1/users/ada/devices", {"token": TOKEN, "platform": "android"}, format="json")

    assert api.delete("/api/v1/users/ada").status_code == 204
    api.put("/api/v1/users/ada", {"email": "ada@example.com"}, format="json")
    assert devices_of(api, "ada") == []


def test_devices_need_an_api_key(client, ada):
    response = client.post("/api/v1/users/ada/devices", {"token": TOKEN, "platform": "ios"},
                           content_type="application/json")
    assert response.status_code in (401, 403)
