"""Sessions, CSRF, the logged-in user and messages are the browser's: the API's paths skip them,
the console keeps them."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_a_post_to_an_unknown_api_path_is_a_404_envelope_with_no_cookie(api):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=api._credentials["HTTP_AUTHORIZATION"])
    answer = client.post("/api/v1/no-such-thing", {}, format="json")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
    assert not answer.cookies  # no session, no CSRF cookie: nothing of the browser's


def test_an_api_post_carrying_a_logged_in_browsers_session_needs_no_csrf_token(api, admin_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    browser.defaults["HTTP_AUTHORIZATION"] = api._credentials["HTTP_AUTHORIZATION"]
    answer = browser.post("/api/v1/notifications", {}, content_type="application/json")
    assert answer.status_code == 400  # refused for its body, not 403 for a missing token
    assert "sessionid" not in answer.cookies


def test_the_console_still_uses_sessions_and_csrf(admin_user):
    browser = Client(enforce_csrf_checks=True)
    login_page = browser.get("/admin/login/")
    assert "csrftoken" in login_page.cookies
    refused = browser.post("/admin/login/", {"username": admin_user.username, "password": "password"})
    assert refused.status_code == 403  # no CSRF token

    browser.force_login(admin_user)
    assert browser.get("/admin/").status_code == 200  # the session's user: the logged-in admin
