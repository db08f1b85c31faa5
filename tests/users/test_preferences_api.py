"""GET|PUT /api/v1/users/{id}/preferences: what a product backend stores for its user."""

import pytest

from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/users/ada/preferences"
DEFAULTS = {"channels": {}, "categories": {}, "quiet_hours": None, "critical_categories": []}


@pytest.fixture
def ada(project):
    return RecipientFactory(project=project, external_id="ada")


def put(api, body: dict | str):
    """A str body goes as it is: JSON escapes a test client would refuse to encode (\\ud800)."""
    if isinstance(body, str):
        return api.put(URL, body, content_type="application/json")
    return api.put(URL, body, format="json")


def test_a_user_starts_with_no_preferences(api, ada):
    response = api.get(URL)

    assert response.status_code == 200
    assert response.json() == DEFAULTS


def test_put_stores_the_preferences_and_get_returns_them(api, ada):
    preferences = {
        "channels": {"email": True, "sms": False},
        "categories": {"marketing": {"email": False}, "security": {"sms": True}},
        "quiet_hours": {"start": "22:00", "end": "07:00"},
    }

    response = put(api, preferences)

    assert response.status_code == 200
    assert response.json() == {**preferences, "critical_categories": []}
    assert api.get(URL).json() == {**preferences, "critical_categories": []}


def test_put_replaces_the_whole_and_resets_what_it_leaves_out(api, ada):
    put(api, {"channels": {"sms": False}, "categories": {"marketing": {"email": False}},
              "quiet_hours": {"start": "22:00", "end": "07:00"}})

    assert put(api, {"channels": {"push": False}}).json() == {**DEFAULTS, "channels": {"push": False}}
    assert put(api, {"quiet_hours": None}).json() == DEFAULTS


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channels": {"fax": False}}, "channels"),
        ({"channels": {"email": "no"}}, "channels"),
        ({"channels": {"email": 0}}, "channels"),
        ({"channels": ["email"]}, "channels"),
        ({"categories": {"marketing": {"carrier_pigeon": False}}}, "categories"),
        ({"categories": {"marketing": False}}, "categories"),
        ({"categories": {"x" * 101: {"email": False}}}, "categories"),
        ({"categories": {"mark\u0000eting": {"email": False}}}, "categories"),
        ('{"categories": {"\\ud800": {"email": false}}}', "categories"),
        ({"quiet_hours": {"start": "22:00"}}, "quiet_hours"),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours"),
        ({"quiet_hours": {"start": "10pm", "end": "07:00"}}, "quiet_hours"),
        ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, "quiet_hours"),
        ({"quiet_hours": "22:00-07:00"}, "quiet_hours"),
    ],
)
def test_invalid_preferences_are_refused_with_the_field_named_and_nothing_changes(api, ada, body, field):
    response = put(api, body)

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["details"]
    assert api.get(URL).json() == DEFAULTS


def test_a_user_of_another_project_or_none_at_all_is_404(api):
    RecipientFactory(external_id="ada")  # another project's

    for response in (api.get(URL), put(api, {"channels": {"sms": False}})):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
