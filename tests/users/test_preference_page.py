"""The preference page behind a signed link: POST /users/{id}/preferences-link makes the link, the
page's form saves what GET /users/{id}/preferences then shows, and a link that was altered,
expired or made for something else opens nothing."""

import re
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.inbox.tokens import inbox_token_issue
from apps.users.preference_links import preferences_link_issue
from apps.users.unsubscribe import unsubscribe_token
from tests.notifications.factories import NotificationFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db

CHANNELS = ("email", "sms", "push", "in_app", "webhook")


@pytest.fixture
def ada(project):
    project.name = "Acme Shop"
    project.critical_categories = ["security"]
    project.save()
    NotificationFactory(project=project, category="marketing")  # a category the project has sent in
    return RecipientFactory(project=project, external_id="ada", category_preferences={"news": {"sms": False}})


def page_path(recipient, **kwargs) -> str:
    url, _ = preferences_link_issue(project_id=recipient.project_id, recipient_id=recipient.id, **kwargs)
    return urlsplit(url).path


def browser() -> Client:
    # As a person's browser arriving from an email: no cookie, no session, CSRF checks on.
    return Client(enforce_csrf_checks=True)


def checkboxes(html: str) -> dict[str, str]:
    """name → the rest of the <input type=checkbox> tag (to look for `checked`, `disabled`)."""
    return {match[1]: match[2] for match in re.finditer(r'<input type="checkbox" name="([^"]+)"([^>]*)>', html)}


def everything_checked_but(html: str, *unchecked: str) -> dict[str, str]:
    """The form as a browser submits it when the user unchecks `unchecked` and leaves the rest as shown."""
    fields = {name: "on" for name, rest in checkboxes(html).items()
              if "checked" in rest and "disabled" not in rest and name not in unchecked}
    fields.update(re.findall(r'<input type="time" name="([^"]+)" value="([^"]*)"', html))
    return fields


def preferences(api, external_id: str = "ada") -> dict:
    response = api.get(f"/api/v1/users/{external_id}/preferences")
    assert response.status_code == 200
    return response.json()


# --- The link --------------------------------------------------------------------------------------

def test_the_api_gives_a_signed_expiring_link_to_the_users_page(api, ada, settings):
    settings.PUBLIC_BASE_URL = "https://notifier.example.com/"
    before = time.time()

    response = api.post("/api/v1/users/ada/preferences-link")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["url"].startswith("https://notifier.example.com/preferences/")
    expires_at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")).timestamp()
    assert before + settings.NOTIFIER_PREFERENCES_LINK_TTL_SECONDS - 5 < expires_at < time.time() + \
        settings.NOTIFIER_PREFERENCES_LINK_TTL_SECONDS + 5
    assert browser().get(urlsplit(body["url"]).path).status_code == 200


def test_without_public_base_url_the_link_is_under_the_address_the_api_was_called_at(api, ada, settings):
    settings.PUBLIC_BASE_URL = ""  # production sending no email may leave it unset

    url = api.post("/api/v1/users/ada/preferences-link").json()["url"]

    assert url.startswith("http://testserver/preferences/")
    assert browser().get(urlsplit(url).path).status_code == 200


def test_a_link_for_an_unknown_user_is_a_404_envelope_and_a_key_is_required(api, ada):
    response = api.post("/api/v1/users/nobody/preferences-link")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert APIClient().post("/api/v1/users/ada/preferences-link").status_code == 401


def test_another_projects_key_gets_no_link_for_the_user(ada):
    from tests.projects.factories import ApiKeyFactory

    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {ApiKeyFactory().raw_key}")
    assert other.post("/api/v1/users/ada/preferences-link").status_code == 404


# --- The form --------------------------------------------------------------------------------------

def test_the_page_shows_a_checkbox_per_channel_and_per_category_and_channel(ada):
    response = browser().get(page_path(ada))

    assert response.status_code == 200
    html = response.content.decode()
    boxes = checkboxes(html)
    expected = {f"channel:{c}" for c in CHANNELS} | {f"category:{category}:{c}" for category in
                                                      ("marketing", "news", "security") for c in CHANNELS}
    assert set(boxes) == expected
    assert all("checked" in boxes[f"channel:{c}"] for c in CHANNELS)  # nothing turned off yet
    assert "checked" not in boxes["category:news:sms"] and "checked" in boxes["category:news:email"]
    assert all("checked" in boxes[f"category:security:{c}"] and "disabled" in boxes[f"category:security:{c}"]
               for c in CHANNELS)  # critical: always on, not the user's to change
    assert "disabled" not in boxes["category:marketing:email"]
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "Acme Shop" in html and 'name="quiet_hours_start"' in html and 'type="submit"' in html
    assert response["Cache-Control"] == "no-store" and response["Referrer-Policy"] == "no-referrer"
    assert "Set-Cookie" not in response  # the link is the credential: no session, no CSRF cookie


def test_unchecking_a_category_saves_what_get_preferences_shows_and_the_page_confirms(api, ada):
    client, path = browser(), page_path(ada)
    form = everything_checked_but(client.get(path).content.decode(), "category:marketing:email")

    response = client.post(path, form)

    assert response.status_code == 303 and response["Location"] == f"{path}?saved=1"
    saved = preferences(api)
    assert saved["categories"] == {"marketing": {"email": False}, "news": {"sms": False}}
    assert saved["channels"] == dict.fromkeys(CHANNELS, True)
    assert saved["quiet_hours"] is None
    confirmation = client.get(response["Location"]).content.decode()
    assert 'id="saved"' in confirmation and "Your preferences are saved." in confirmation
    assert "checked" not in checkboxes(confirmation)["category:marketing:email"]


def test_a_channel_turned_off_applies_to_every_category_without_a_switch_of_its_own(api, ada):
    client, path = browser(), page_path(ada)
    form = everything_checked_but(client.get(path).content.decode(), "channel:email")

    assert client.post(path, form).status_code == 303

    saved = preferences(api)
    assert saved["channels"]["email"] is False
    # Left as they were, the categories' email boxes follow the channel: no switch stored for them.
    assert saved["categories"] == {"news": {"sms": False}}
    page = checkboxes(client.get(path).content.decode())
    assert "checked" not in page["category:marketing:email"] and "checked" in page["category:security:email"]


def test_a_critical_categorys_boxes_change_nothing_even_when_posted(api, ada):
    client, path = browser(), page_path(ada)
    form = everything_checked_but(client.get(path).content.decode())
    # A hand-made POST: the disabled boxes are not submitted by browsers, and are ignored if they are.
    form.pop("category:security:email", None)

    assert client.post(path, form).status_code == 303

    assert "security" not in preferences(api)["categories"]


def test_quiet_hours_are_saved_and_shown_again(api, ada):
    client, path = browser(), page_path(ada)
    form = {**everything_checked_but(client.get(path).content.decode()),
            "quiet_hours_start": "22:00", "quiet_hours_end": "07:00"}

    assert client.post(path, form).status_code == 303

    assert preferences(api)["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    html = client.get(path).content.decode()
    assert 'name="quiet_hours_start" value="22:00"' in html and 'name="quiet_hours_end" value="07:00"' in html


@pytest.mark.parametrize(("start", "end"), [("22:00", ""), ("25:00", "07:00"), ("08:00", "08:00")])
def test_bad_quiet_hours_show_the_form_again_with_the_reason_and_save_nothing(api, ada, start, end):
    client, path = browser(), page_path(ada)
    form = {**everything_checked_but(client.get(path).content.decode(), "channel:sms"),
            "quiet_hours_start": start, "quiet_hours_end": end}

    response = client.post(path, form)

    assert response.status_code == 400
    assert 'id="error"' in response.content.decode()
    assert preferences(api)["channels"] == {}


def test_the_page_speaks_the_users_language(api, ada):
    ada.locale = "fr-FR"
    ada.save()

    html = browser().get(page_path(ada)).content.decode()

    assert '<html lang="fr">' in html
    assert "Préférences de notification" in html and "Enregistrer" in html and "Heures de silence" in html


def test_a_user_without_a_locale_gets_the_projects_default_and_english_otherwise(ada):
    ada.project.default_locale = "fr"
    ada.project.save()
    assert "Enregistrer" in browser().get(page_path(ada)).content.decode()
    ada.locale = "de"
    ada.save()
    html = browser().get(page_path(ada)).content.decode()
    assert '<html lang="en">' in html and ">Save<" in html


# --- Refused links -----------------------------------------------------------------------------------

@pytest.mark.parametrize("tamper", [lambda t: t[:-2], lambda t: t.replace(":", ":x", 1), lambda t: "x" + t])
def test_a_tampered_link_is_a_400_page_that_changes_nothing(api, ada, tamper):
    path = page_path(ada)
    token = path.removeprefix("/preferences/")
    tampered = f"/preferences/{tamper(token)}"

    for response in (browser().get(tampered), browser().post(tampered, {"channel:email": "on"})):
        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/html")
        assert "This link is not valid" in response.content.decode()
    assert preferences(api)["channels"] == {}


def test_an_expired_link_is_a_410_page(api, ada):
    response = browser().post(page_path(ada, ttl_seconds=-1), {"channel:email": "on"})

    assert response.status_code == 410
    assert "This link has expired" in response.content.decode()
    assert preferences(api)["channels"] == {}


def test_a_token_made_for_something_else_opens_nothing_here_and_this_one_nothing_elsewhere(ada):
    inbox_token, _ = inbox_token_issue(recipient=ada)
    unsubscribe = unsubscribe_token(project_id=ada.project_id, recipient_id=ada.id, category="marketing")
    assert browser().get(f"/preferences/{inbox_token}").status_code == 400
    assert browser().get(f"/preferences/{unsubscribe}").status_code == 400

    token = page_path(ada).removeprefix("/preferences/")
    inbox = APIClient()
    inbox.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert inbox.get("/api/v1/inbox").status_code == 401
    assert browser().get(f"/unsubscribe/{token}").status_code == 400


def test_a_link_to_an_erased_user_is_a_404_page(ada):
    path = page_path(ada)
    ada.delete()

    assert browser().get(path).status_code == 404


def test_the_unsubscribe_page_links_to_the_users_preference_page(ada):
    token = unsubscribe_token(project_id=ada.project_id, recipient_id=ada.id, category="marketing")

    html = browser().get(f"/unsubscribe/{token}").content.decode()

    [link] = re.findall(r'<a href="([^"]+)">Manage all your notification settings</a>', html)
    assert browser().get(urlsplit(link).path).status_code == 200


def test_expires_at_is_when_the_token_stops_working(ada):
    url, expires_at = preferences_link_issue(project_id=ada.project_id, recipient_id=ada.id, ttl_seconds=60)
    assert 55 < (expires_at - datetime.now(tz=UTC)).total_seconds() <= 60
    assert browser().get(urlsplit(url).path).status_code == 200
