"""Template policy and one-click unsubscribe, end to end: the API of the real web process, real
workers on RabbitMQ, and what the SMTP server received."""

import re

import pytest
import requests

from tests.e2e.conftest import notification_when_final

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def accepted(response) -> str:
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_a_user_in_fr_ca_gets_the_fr_version_and_one_in_de_the_default(http, worker, smtp):
    assert http.put("/api/v1/templates/welcome", json={
        "channels": {"email": {"subject": "Welcome {{ name }}", "text": "en"}}}).status_code == 201
    assert http.put("/api/v1/templates/welcome", json={"locale": "fr", "channels": {
        "email": {"subject": "Bienvenue {{ name }}", "text": "fr"}}}).status_code == 201
    http.put("/api/v1/users/amelie", json={"email": "amelie@example.com", "locale": "fr_CA"})
    http.put("/api/v1/users/jonas", json={"email": "jonas@example.com", "locale": "de-AT"})

    for user in ("amelie", "jonas"):
        sent = accepted(http.post("/api/v1/notifications", json={"to": user, "template": "welcome",
                                                                  "data": {"name": user.title()}}))
        assert notification_when_final(http, sent)["status"] == "sent"

    [french] = smtp.received_for("amelie@example.com")
    [default] = smtp.received_for("jonas@example.com")
    assert french["Subject"] == "Bienvenue Amelie"
    assert default["Subject"] == "Welcome Jonas"


def test_a_pinned_version_is_sent_and_a_missing_variable_is_a_422(http, worker, smtp):
    http.put("/api/v1/users/ada", json={"email": "ada@example.com"})
    http.put("/api/v1/templates/receipt", json={"channels": {"email": {"subject": "Receipt v1", "text": "{{ total }}"}}})
    http.put("/api/v1/templates/receipt", json={"channels": {"email": {"subject": "Receipt v2 for {{ name }}",
                                                                        "text": "{{ total }}"}}})

    missing = http.post("/api/v1/notifications", json={"to": "ada", "template": "receipt", "data": {"total": "9"}})
    unknown = http.post("/api/v1/notifications", json={"to": "ada", "template": "receipt", "template_version": 3,
                                                       "data": {"total": "9"}})
    pinned = accepted(http.post("/api/v1/notifications", json={"to": "ada", "template": "receipt",
                                                               "template_version": 1, "data": {"total": "9"}}))

    assert missing.status_code == 422
    assert missing.json()["error"]["code"] == "missing_variables"
    assert missing.json()["error"]["details"] == {"missing_variables": ["name"]}
    assert (unknown.status_code, unknown.json()["error"]["details"]) == (422, {"template_version": 3})
    assert notification_when_final(http, pinned)["status"] == "sent"
    [mail] = smtp.received_for("ada@example.com")
    assert mail["Subject"] == "Receipt v1"
    assert mail.get_body(("plain",)).get_content().strip() == "9"


def _send(http, category: str) -> dict:
    body = {"to": "ada", "template": "news", "data": {"n": category}}
    if category:
        body["category"] = category
    return notification_when_final(http, accepted(http.post("/api/v1/notifications", json=body)))


def test_one_click_unsubscribe_from_the_mails_header_round_trip(http, worker, smtp, web):
    http.put("/api/v1/users/ada", json={"email": "ada@example.com"})
    assert http.patch("/api/v1/project", json={"critical_categories": ["security"]}).status_code == 200
    http.put("/api/v1/templates/news", json={"channels": {"email": {"subject": "News {{ n }}", "text": "x"}}})
    assert _send(http, "marketing")["status"] == "sent"
    assert _send(http, "")["status"] == "sent"

    marketing, transactional = smtp.received_for("ada@example.com")
    # Emails without a category are taken as transactional: no unsubscribe link.
    assert transactional["List-Unsubscribe"] is None
    assert marketing["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [url] = re.findall(r"<(http[^>]+)>", marketing["List-Unsubscribe"])
    assert url.startswith(f"{web}/unsubscribe/")

    # A scanner following the link changes nothing; the mail client's POST does, with no credentials.
    assert requests.get(url, timeout=10).status_code == 200
    assert _send(http, "marketing")["status"] == "sent"
    response = requests.post(url, data="List-Unsubscribe=One-Click", timeout=10,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text

    preferences = http.get("/api/v1/users/ada/preferences").json()
    assert preferences["categories"] == {"marketing": {"email": False}}
    # Even a user who declines the critical category in their preferences still gets it.
    preferences["categories"]["security"] = {"email": False}
    assert http.put("/api/v1/users/ada/preferences", json=preferences).status_code == 200
    later = _send(http, "marketing")
    assert later["status"] == "skipped"
    assert "marketing" in later["deliveries"][0]["skip_reason"]
    # The project's critical category still goes out, and offers no unsubscribe.
    assert _send(http, "security")["status"] == "sent"
    received = smtp.received_for("ada@example.com")
    assert [m["Subject"] for m in received] == ["News marketing", "News ", "News marketing", "News security"]
    assert received[-1]["List-Unsubscribe"] is None

    tampered = requests.post(url[:-2] + ("AA" if not url.endswith("AA") else "BB"), timeout=10,
                             data="List-Unsubscribe=One-Click",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert tampered.status_code == 400


def test_bulk_upsert_of_valid_and_invalid_users_then_a_send_to_one(http, worker, smtp):
    response = http.put("/api/v1/users", json={"users": [
        {"external_id": "ada", "email": "ada@example.com", "name": "Ada"},
        {"external_id": "bob", "email": "not-an-email"},
        {"external_id": "cyd", "phone": "+14155550100", "locale": "fr"},
    ]})

    assert response.status_code == 200, response.text
    ada, bob, cyd = response.json()["results"]
    assert (ada["id"], ada["email"]) == ("ada", "ada@example.com")
    assert bob["error"]["code"] == "invalid" and "email" in bob["error"]["details"]
    assert (cyd["id"], cyd["phone"], cyd["locale"]) == ("cyd", "+14155550100", "fr")
    assert http.get("/api/v1/users/bob").status_code == 404

    http.put("/api/v1/templates/hello", json={"channels": {"email": {"subject": "Hello {{ name }}", "text": "x"}}})
    sent = accepted(http.post("/api/v1/notifications", json={"to": "ada", "template": "hello", "data": {"name": "Ada"}}))
    assert notification_when_final(http, sent)["status"] == "sent"
    assert [m["Subject"] for m in smtp.received_for("ada@example.com")] == ["Hello Ada"]
