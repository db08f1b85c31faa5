"""The page behind an email's List-Unsubscribe link (RFC 8058): a POST as mail clients send it
unsubscribes, a GET only asks, a forged token changes nothing."""

import pytest
from django.test import Client

from apps.users.models import Unsubscribe
from apps.users.unsubscribe import unsubscribe_token, unsubscribe_token_read
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(project):
    return RecipientFactory(project=project, external_id="ada", category_preferences={"news": {"sms": False}})


def link(recipient, category="marketing") -> str:
    token = unsubscribe_token(project_id=recipient.project_id, recipient_id=recipient.id, category=category)
    return f"/unsubscribe/{token}"


def one_click(url: str):
    # As a mail client: form-encoded, no cookie, no CSRF token, no credentials.
    return Client(enforce_csrf_checks=True).post(url, "List-Unsubscribe=One-Click",
                                                 content_type="application/x-www-form-urlencoded")


def test_a_one_click_post_turns_that_categorys_email_off_and_is_recorded(ada):
    response = one_click(link(ada))

    assert response.status_code == 200
    assert "unsubscribed" in response.content.decode()
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies
    ada.refresh_from_db()
    assert ada.category_preferences == {"news": {"sms": False}, "marketing": {"email": False}}
    [record] = Unsubscribe.objects.all()
    assert (record.recipient, record.project, record.category, record.channel, record.source) == (
        ada, ada.project, "marketing", "email", "one-click")


def test_a_get_only_shows_a_page_that_posts(ada):
    response = Client().get(link(ada))

    page = response.content.decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    assert '<form method="post">' in page and "marketing" in page
    assert response["Cache-Control"] == "no-store"
    ada.refresh_from_db()
    assert "marketing" not in ada.category_preferences
    assert not Unsubscribe.objects.exists()


def test_the_pages_button_unsubscribes_and_records_the_page_as_source(ada):
    response = Client(enforce_csrf_checks=True).post(link(ada), {"confirm": "page"})

    assert response.status_code == 200
    assert Unsubscribe.objects.get().source == "page"


@pytest.mark.parametrize("tamper", [
    lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),
    lambda token: token.replace(":", ":x", 1),
    lambda token: "garbage",
])
def test_a_tampered_token_is_a_400_page_and_changes_nothing(ada, tamper):
    token = link(ada).rsplit("/", 1)[1]
    response = one_click(f"/unsubscribe/{tamper(token)}")

    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    ada.refresh_from_db()
    assert "marketing" not in ada.category_preferences
    assert not Unsubscribe.objects.exists()


def test_a_token_names_one_user_of_one_project():
    target = unsubscribe_token_read(unsubscribe_token(project_id=3, recipient_id=4, category="news"))
    assert (target.project_id, target.recipient_id, target.category) == (3, 4, "news")


def test_an_erased_user_gets_a_404_page(ada):
    url = link(ada)
    ada.delete()
    assert one_click(url).status_code == 404


def test_a_head_request_changes_nothing(ada):
    assert Client().head(link(ada)).status_code == 200
    assert not Unsubscribe.objects.exists()
