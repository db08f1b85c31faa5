import pytest

from apps.channels.backends import locmem
from apps.channels.registry import backends_reset
from tests.notifications import backends
from tests.users.factories import RecipientFactory

PARTS = {
    "email": {"subject": "Hi {{ name }}", "text": "Hello {{ name }}"},
    "sms": {"text": "Code {{ name }}"},
    "push": {"title": "Hi", "body": "{{ name }}"},
    "in_app": {"title": "Hi", "body": "{{ name }}"},
}


@pytest.fixture(autouse=True)
def channels(settings):
    """Email, SMS and push to the in-memory outbox (with the real backends' contact rules); push
    answers as scripted when `backends.script` holds an error; in-app to the real inbox."""
    settings.NOTIFIER_CHANNELS = {
        "email": {"BACKEND": "apps.channels.backends.locmem.OutboxBackend",
                  "OPTIONS": {"like": "apps.channels.backends.email.DjangoEmailBackend"}, "MAX_ATTEMPTS": 3},
        "sms": {"BACKEND": "apps.channels.backends.locmem.OutboxBackend",
                "OPTIONS": {"like": "apps.channels.backends.twilio.TwilioSmsBackend"}, "MAX_ATTEMPTS": 3},
        "push": {"BACKEND": "tests.notifications.backends.ScriptedBackend", "MAX_ATTEMPTS": 3},
        "in_app": {"BACKEND": "apps.inbox.backend.InboxBackend", "MAX_ATTEMPTS": 3},
    }
    backends_reset()
    locmem.outbox.clear()
    backends.script.clear()
    backends.accepted.clear()
    yield locmem.outbox
    backends_reset()
    locmem.outbox.clear()
    backends.script.clear()
    backends.accepted.clear()


@pytest.fixture
def template(api):
    response = api.put("/api/v1/templates/alert", {"channels": PARTS}, format="json")
    assert response.status_code == 201, response.content
    return "alert"


@pytest.fixture
def user(project):
    return RecipientFactory(project=project, external_id="ada", email="ada@example.com", phone="+15005550006")


def put_workflow(api, key, **body):
    return api.put(f"/api/v1/workflows/{key}", body, format="json")
