"""Hostile or odd input at the HTTP edge: every refusal is the JSON error envelope, never an HTML
page or a 5xx; limits on keys, dates and phone numbers are checked, not cut or crashed on."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.users.preferences import quiet_hours_release_at
from tests.templates.factories import TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json", response.content[:200]
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and isinstance(error["details"], dict)
    return error


@pytest.fixture
def ada(project):
    recipient = RecipientFactory(project=project, external_id="ada", email="ada@example.com", timezone="America/New_York",
                                 quiet_hours_start=time(22), quiet_hours_end=time(7))
    TemplateVersionFactory(template__project=project, template__key="welcome")
    return recipient


# --- Idempotency-Key -------------------------------------------------------------------------------

def send(api, key: str, **body):
    return api.post("/api/v1/notifications", {"to": "ada", "template": "welcome", **body}, format="json",
                    HTTP_IDEMPOTENCY_KEY=key)


def test_an_idempotency_key_over_255_characters_is_refused_not_cut(api, ada):
    prefix = "k" * 255
    first = send(api, prefix + "a" * 46, data={"n": 1})
    second = send(api, prefix + "b" * 46, data={"n": 2})

    # Before: both were cut to the same 255 characters, and the second got a 409.
    assert "Idempotency-Key" in assert_envelope(first, 400, "invalid")["details"]
    assert "Idempotency-Key" in assert_envelope(second, 400, "invalid")["details"]


def test_an_idempotency_key_of_255_characters_still_works(api, ada):
    key = "k" * 255
    first = send(api, key)
    assert first.status_code == 202, first.content
    assert send(api, key).json()["id"] == first.json()["id"]


# --- send_at and quiet hours -----------------------------------------------------------------------

@pytest.mark.parametrize("send_at", ["9999-12-31T23:59:59Z", "2100-01-01T00:00:00Z"])
def test_a_send_at_beyond_the_horizon_is_a_400_even_with_quiet_hours(api, ada, send_at):
    # Before: 9999-12-31 was a 500 (OverflowError in the quiet-hours arithmetic).
    error = assert_envelope(send(api, "", send_at=send_at), 400, "invalid")
    assert "send_at" in error["details"]


def test_a_send_at_within_the_horizon_waits(api, ada):
    send_at = (datetime.now(UTC) + timedelta(days=300)).isoformat()
    assert send(api, "", send_at=send_at).json()["status"] == "pending"


def test_quiet_hours_at_the_end_of_the_calendar_do_not_crash(ada):
    moment = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)  # in Karachi (UTC+5), a day the calendar does not have
    ada.timezone = "Asia/Karachi"
    assert quiet_hours_release_at(recipient=ada, priority="normal", moment=moment) is None


# --- Phone numbers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("phone", ["+15558675310", "+15005550006", "+14155550123", "+33612345678"])
def test_possible_e164_numbers_are_accepted_including_providers_test_ranges(api, phone):
    response = api.put("/api/v1/users/bob", {"phone": phone}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["phone"] == phone


@pytest.mark.parametrize("phone", ["+1234", "4155550123", "+1555867531099999", "+999123456789", "call me"])
def test_impossible_phone_numbers_are_a_400(api, phone):
    assert "phone" in assert_envelope(api.put("/api/v1/users/bob", {"phone": phone}, format="json"), 400, "invalid")["details"]


# --- Django's own refusals, in the envelope ---------------------------------------------------------

def test_a_host_not_allowed_is_a_400_envelope(api):
    assert_envelope(api.get("/api/v1/project", HTTP_HOST="evil.example"), 400, "bad_request")


def test_too_many_query_fields_is_a_400_envelope(api, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    query = "&".join(f"f{i}=1" for i in range(50))
    assert_envelope(api.get(f"/api/v1/notifications?{query}"), 400, "bad_request")


def test_a_form_body_over_django_s_limit_is_a_413_envelope(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = Client().post("/admin/login/", "username=" + "x" * 5000, content_type="application/x-www-form-urlencoded")
    assert_envelope(response, 413, "request_too_large")


def test_a_csrf_failure_is_a_403_envelope():
    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "a", "password": "b"})
    assert_envelope(response, 403, "csrf_failed")


def test_a_body_that_is_not_utf8_is_a_400_envelope(api, ada):
    response = api.post("/api/v1/notifications", b'{"to": "\xff\xfe"}', content_type="application/json")
    assert_envelope(response, 400, "malformed_request")


def test_a_wrong_method_and_a_wrong_media_type_are_envelopes(api, ada):
    assert_envelope(api.delete("/api/v1/notifications"), 405, "method_not_allowed")
    assert_envelope(api.post("/api/v1/notifications", "to=ada", content_type="text/plain"), 415, "unsupported_media_type")


# --- Metrics and readiness ----------------------------------------------------------------------------

def test_metrics_need_the_token_when_one_is_set(settings):
    settings.NOTIFIER_METRICS_TOKEN = "scrape-token-123"
    assert_envelope(APIClient().get("/metrics"), 401, "not_authenticated")
    assert_envelope(APIClient().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong"), 401, "not_authenticated")
    response = APIClient().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-123")
    assert response.status_code == 200
    assert "django_http_requests" in response.content.decode()


def test_metrics_can_be_kept_to_allowed_networks(settings):
    settings.NOTIFIER_METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert_envelope(APIClient().get("/metrics"), 403, "permission_denied")  # the test client is 127.0.0.1
    assert APIClient().get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200


def test_metrics_are_closed_where_open_is_off_and_nobody_was_let_in(settings):
    # Production's default (NOTIFIER_METRICS_OPEN is False in prod): the answer names what opens it.
    settings.NOTIFIER_METRICS_OPEN = False
    response = APIClient().get("/metrics")
    assert_envelope(response, 403, "permission_denied")
    assert "NOTIFIER_METRICS_TOKEN" in response.json()["error"]["message"]
    settings.NOTIFIER_METRICS_TOKEN = "scrape-token-123"
    assert APIClient().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-123").status_code == 200
    settings.NOTIFIER_METRICS_TOKEN = ""
    settings.NOTIFIER_METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert APIClient().get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
