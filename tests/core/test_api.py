"""Bad input anywhere in the API is a 4xx with the error envelope, never a 500."""

import pytest

from tests.templates.factories import TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db

JSON_ENDPOINTS = [
    ("put", "/api/v1/users/ada"),
    ("post", "/api/v1/users/ada/devices"),
    ("put", "/api/v1/templates/welcome"),
    ("post", "/api/v1/templates/welcome/preview"),
    ("post", "/api/v1/notifications"),
    ("patch", "/api/v1/project"),
]


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert (error["code"], bool(error["message"]), isinstance(error["details"], dict)) == (code, True, True)
    return error


@pytest.fixture
def ada(project):
    RecipientFactory(project=project, external_id="ada")
    TemplateVersionFactory(template__project=project, template__key="welcome")


@pytest.mark.parametrize(("method", "url"), JSON_ENDPOINTS)
def test_a_body_nested_too_deeply_to_parse_is_a_400(api, ada, method, url):
    body = '{"data": ' + "[" * 100_000 + "]" * 100_000 + "}"

    response = getattr(api, method)(url, data=body, content_type="application/json")

    assert "nested too deeply" in assert_error(response, 400, "malformed_request")["message"]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/users/a%00b"),
        ("put", "/api/v1/users/a%00b"),
        ("delete", "/api/v1/users/a%00b"),
        ("put", "/api/v1/users/" + "x" * 201),
        ("post", "/api/v1/users/a%00b/devices"),
        ("post", "/api/v1/users/a%00b/token"),
        ("delete", "/api/v1/users/ada/devices/tok%00en"),
        ("delete", "/api/v1/users/ada/devices/" + "t" * 513),
        ("put", "/api/v1/templates/" + "k" * 101),
        ("get", "/api/v1/templates/a%00b"),
        ("post", "/api/v1/templates/" + "k" * 101 + "/preview"),
        ("get", "/api/v1/no-such-thing"),
    ],
)
def test_a_path_no_resource_could_have_is_a_404(api, ada, method, url):
    assert_error(getattr(api, method)(url, {}, format="json"), 404, "not_found")


def test_the_404_is_the_envelope_with_debug_on_too(api, settings):
    settings.DEBUG = True  # Django would answer its HTML debug page
    assert_error(api.get("/api/v1/users/a%00b"), 404, "not_found")
    assert_error(api.get("/api/v1/no-such-thing"), 404, "not_found")


def test_ids_up_to_the_column_size_still_work(api):
    long_id, long_key = "x" * 200, "k" * 100

    assert api.put(f"/api/v1/users/{long_id}", {}, format="json").status_code == 201
    assert api.get(f"/api/v1/users/{long_id}").json()["id"] == long_id
    assert api.put(f"/api/v1/templates/{long_key}", {"channels": {"sms": {"text": "hi"}}}, format="json").status_code == 201
    assert api.get(f"/api/v1/templates/{long_key}").json()["key"] == long_key


def test_a_body_over_the_size_limit_is_a_413(api, ada, settings):
    settings.NOTIFIER_MAX_REQUEST_BYTES = 10_000
    body = '{"email": "ada@example.com", "data": {"blob": "' + "x" * 50_000 + '"}}'
    assert_error(api.put("/api/v1/users/ada", body, content_type="application/json"), 413, "request_too_large")
    assert api.put("/api/v1/users/ada", '{"name": "Ada"}', content_type="application/json").status_code == 200
