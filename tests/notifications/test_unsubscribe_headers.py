"""Which emails the pipeline gives one-click unsubscribe headers, and what they hold."""

import re

import pytest

from apps.notifications.delivery.unsubscribe_headers import unsubscribe_headers
from apps.users.unsubscribe import unsubscribe_token_read
from tests.projects.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def headers(project, channel="email", category="marketing"):
    return unsubscribe_headers(channel=channel, project=project, recipient_id=42, category=category)


def test_an_email_of_a_category_gets_a_signed_https_link_and_the_one_click_post(settings):
    settings.PUBLIC_BASE_URL = "https://notifier.example.com/"
    project = ProjectFactory()

    found = headers(project)

    assert found["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [token] = re.fullmatch(r"<https://notifier\.example\.com/unsubscribe/([^>]+)>", found["List-Unsubscribe"]).groups()
    target = unsubscribe_token_read(token)
    assert (target.project_id, target.recipient_id, target.category) == (project.id, 42, "marketing")


def test_a_mailto_is_added_when_configured(settings):
    settings.NOTIFIER_UNSUBSCRIBE_MAILTO = "unsubscribe@example.com"

    value = headers(ProjectFactory())["List-Unsubscribe"]

    https, mailto = value.split(", ")
    assert https.startswith("<http") and mailto.startswith("<mailto:unsubscribe@example.com?subject=unsubscribe%20")


def test_no_header_without_a_category_on_other_channels_or_for_a_critical_category():
    project = ProjectFactory()
    assert headers(project, category="") == {}
    assert headers(project, channel="sms") == {}
    project.critical_categories = ["security"]  # the projects' own field where the installation has it
    assert headers(project, category="security") == {}
    assert headers(project, category="marketing") != {}
