"""`{{ preferences_url }}` in email templates: each email's footer link to its recipient's own
preference page, given by the pipeline (the caller's data need not hold it)."""

from urllib.parse import urlsplit

import pytest
from django.test import Client

from apps.notifications.delivery.sending import delivery_send
from tests.notifications.factories import queued_delivery
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db

FOOTER = {"subject": "News", "text": "Hello.\n--\nYour settings: {{ preferences_url }}"}


def test_each_email_links_its_recipients_own_preference_page(outbox, project, settings):
    settings.PUBLIC_BASE_URL = "https://notifier.example.com"
    for name in ("ada", "bob"):  # each with a category of their own, for their page to show
        recipient = RecipientFactory(project=project, external_id=name, category_preferences={name: {"sms": False}})
        delivery_send(delivery_id=str(queued_delivery(recipient=recipient, channel="email", parts=FOOTER).id))

    links = [message.content["text"].rsplit("Your settings: ", 1)[1] for message in outbox]
    for link, name, other in zip(links, ("ada", "bob"), ("bob", "ada"), strict=True):
        assert link.startswith("https://notifier.example.com/preferences/")
        page = Client().get(urlsplit(link).path)
        assert page.status_code == 200
        html = page.content.decode()
        assert f'name="category:{name}:sms"' in html and f'name="category:{other}:sms"' not in html


def test_a_preferences_url_in_the_data_wins(outbox, project):
    ada = RecipientFactory(project=project, external_id="ada")
    delivery = queued_delivery(recipient=ada, channel="email", parts=FOOTER,
                               data={"preferences_url": "https://shop.example/settings"})

    delivery_send(delivery_id=str(delivery.id))

    assert outbox[0].content["text"].endswith("Your settings: https://shop.example/settings")


def test_a_strict_template_may_use_it_without_the_caller_giving_it(api, project):
    template = {"strict_variables": True, "channels": {"email": FOOTER}}
    assert api.put("/api/v1/templates/news", template, format="json").status_code == 201
    RecipientFactory(project=project, external_id="ada")

    response = api.post("/api/v1/notifications", {"to": "ada", "template": "news"}, format="json")

    assert response.status_code == 202, response.content
