"""What the widget needs from the service: its script, served as a cacheable static file, and the
inbox API opened to the origins NOTIFIER_INBOX_ALLOWED_ORIGINS lists (and only to them, and only
the inbox). The widget itself runs in a real browser: tests/e2e/test_inbox_widget_browser.py."""

import io

import pytest
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.urls import NoReverseMatch, reverse

from apps.inbox.pages import WIDGET_PATH, inbox_demo
from apps.inbox.tokens import inbox_token_issue
from apps.notifications.models import Notification
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db

ALLOWED = "https://app.example.com"
OTHER = "https://evil.example.net"


@pytest.fixture
def allowed_origins(settings):
    settings.CORS_ALLOWED_ORIGINS = [ALLOWED]


@pytest.fixture
def token(project):
    token, _ = inbox_token_issue(recipient=RecipientFactory(project=project, external_id="ada"))
    return token


# --- The script --------------------------------------------------------------------------------------

def test_the_script_is_served_as_javascript_cacheable_and_revalidated_by_its_etag():
    response = Client().get("/inbox/widget.js")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "public, max-age=3600"
    assert response.content == WIDGET_PATH.read_bytes()
    assert b'customElements.define("notifier-inbox"' in response.content
    assert b"innerHTML" not in response.content  # nothing is ever parsed as HTML
    # Any page may load it: a <script type="module"> fetches with CORS.
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"

    again = Client().get("/inbox/widget.js", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304 and again.content == b""


# --- Cross-origin: the inbox only, the listed origins only, never cookies ----------------------------

def test_a_listed_origins_preflight_may_send_the_bearer_token(allowed_origins):
    response = Client().options("/api/v1/inbox/unread-count", HTTP_ORIGIN=ALLOWED,
                                HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
                                HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization")

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ALLOWED
    assert "authorization" in response["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in response  # no cookie is ever sent along


def test_a_listed_origin_reads_the_inbox_and_its_refusals(allowed_origins, token):
    answered = Client().get("/api/v1/inbox/unread-count", HTTP_ORIGIN=ALLOWED, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert answered.status_code == 200 and answered.json() == {"count": 0}
    assert answered["Access-Control-Allow-Origin"] == ALLOWED

    # The stream's 401 (an expired token) must be readable too: the widget then asks for a new one.
    refused = Client().get("/api/v1/inbox/stream?token=expired", HTTP_ORIGIN=ALLOWED)
    assert refused.status_code == 401
    assert refused["Access-Control-Allow-Origin"] == ALLOWED


def test_an_origin_not_listed_gets_no_cors_headers(allowed_origins, token):
    preflight = Client().options("/api/v1/inbox/unread-count", HTTP_ORIGIN=OTHER,
                                 HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
                                 HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization")
    read = Client().get("/api/v1/inbox/unread-count", HTTP_ORIGIN=OTHER, HTTP_AUTHORIZATION=f"Bearer {token}")

    for response in (preflight, read):
        assert not [name for name in response.headers if name.lower().startswith("access-control-")]


def test_nothing_but_the_inbox_is_opened_to_a_listed_origin(allowed_origins, api_key):
    for path in ("/api/v1/notifications", "/api/v1/users/ada/token", "/api/v1/project"):
        response = Client().options(path, HTTP_ORIGIN=ALLOWED, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
                                    HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization")
        assert "Access-Control-Allow-Origin" not in response, path


def test_no_origin_is_listed_by_default(token):
    response = Client().get("/api/v1/inbox/unread-count", HTTP_ORIGIN=ALLOWED, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert "Access-Control-Allow-Origin" not in response


# --- The demo page (make run) --------------------------------------------------------------------

def test_the_demo_page_is_not_served_outside_the_dev_settings():
    with pytest.raises(NoReverseMatch):
        reverse("inbox-demo")
    assert Client().get("/inbox/demo/").status_code == 404


def test_the_demo_page_embeds_the_widget_for_the_demo_user_and_its_button_notifies_them():
    call_command("seed_demo", base_url="http://127.0.0.1:8000", stdout=io.StringIO())

    page = inbox_demo(RequestFactory().get("/inbox/demo/"))
    html = page.content.decode()
    assert page.status_code == 200
    assert '<script src="/inbox/widget.js"' in html and '<notifier-inbox api-base="http://testserver" token="' in html

    sent = inbox_demo(RequestFactory().post("/inbox/demo/"))
    assert sent.status_code == 303
    notification = Notification.objects.get(to="demo-user")
    assert [d.channel for d in notification.deliveries.all()] == ["in_app"]
