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


def test_repeated_posts_of_one_link_record_one_unsubscribe(ada):
    url = link(ada)
    for _ in range(5):
        assert one_click(url).status_code == 200
    Client().post(url, {"confirm": "page"})

    assert Unsubscribe.objects.count() == 1
    assert Unsubscribe.objects.get().source == "one-click"  # the first request is the record


def test_an_unsubscribe_holds_after_the_category_is_marked_critical_as_the_page_promised(ada, api, admin_client):
    from django.urls import reverse

    from apps.notifications.intake.services import NotificationRequest, notifications_create
    from tests.templates.factories import EMAIL_PARTS, TemplateVersionFactory

    TemplateVersionFactory(template__project=ada.project, template__key="promo", channels={"email": dict(EMAIL_PARTS)})
    RecipientFactory(project=ada.project, external_id="bob")
    page = one_click(link(ada, "promo")).content.decode()
    assert "You will no longer receive <strong>promo</strong> emails" in page

    project = ada.project
    form = {"name": project.name, "default_locale": "en", "webhook_url": "", "status_webhook_url": "",
            "critical_categories": '["promo"]', "frequency_caps": "[]",
            "api_keys-TOTAL_FORMS": "0", "api_keys-INITIAL_FORMS": "0"}
    saved = admin_client.post(reverse("admin:projects_project_change", args=[project.id]), form, follow=True)
    project.refresh_from_db()
    to_ada, to_bob = notifications_create(project=project, requests=[
        NotificationRequest(to=to, template_key="promo", channels=["email"], category="promo") for to in ("ada", "bob")])

    assert project.critical_categories == ["promo"]
    assert "1 user unsubscribed from &#x27;promo&#x27; through an email&#x27;s link" in saved.content.decode()
    [ada_email] = to_ada.deliveries
    assert ada_email.status == "skipped" and "unsubscribe link" in ada_email.skip_reason
    assert [d.status for d in to_bob.deliveries] == ["queued"]


@pytest.mark.parametrize("formatter", ["JsonFormatter", "TextFormatter"])
def test_the_token_is_masked_in_every_log_line_the_link_causes(ada, formatter):
    import io
    import logging

    from apps.core import logs

    url = link(ada)
    token = url.rsplit("/", 1)[1]
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(getattr(logs, formatter)())
    handler.addFilter(logs.CorrelationIdFilter())
    logging.getLogger().addHandler(handler)
    try:
        one_click(url)  # the request line
        one_click(url[:-2])  # a 400: Django's "Bad Request: <path>" warning too
        ada.delete()
        one_click(url)  # a 404: "Not Found: <path>"
    finally:
        logging.getLogger().removeHandler(handler)

    lines = written.getvalue()
    assert lines.count("/unsubscribe/***") >= 5, lines
    assert token not in lines and token[:-2] not in lines and token.split(":")[0] not in lines
