"""A user is reachable by SMS with a phone number, and by push with at least one active device."""

import pytest

from apps.users.models import Device
from tests.templates.factories import TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sms_and_push_enabled(settings, project):
    def outbox_like(backend: str) -> dict:
        return {"BACKEND": "apps.channels.backends.locmem.OutboxBackend", "OPTIONS": {"like": backend}}

    settings.NOTIFIER_CHANNELS = {**settings.NOTIFIER_CHANNELS,
                                  "sms": outbox_like("apps.channels.backends.twilio.TwilioSmsBackend"),
                                  "push": outbox_like("apps.channels.backends.fcm.FcmPushBackend")}
    TemplateVersionFactory(template__project=project, template__key="hello",
                           channels={"email": {"subject": "s", "text": "t"}, "sms": {"text": "t"},
                                     "push": {"title": "t", "body": "b"}})


def deliveries(api, to: str) -> dict[str, tuple[str, str]]:
    response = api.post("/api/v1/notifications", {"to": to, "template": "hello"}, format="json")
    assert response.status_code == 202, response.content
    notification = api.get(f"/api/v1/notifications/{response.json()['id']}").json()
    return {d["channel"]: (d["status"], d["skip_reason"]) for d in notification["deliveries"]}


def test_without_a_phone_or_an_active_device_sms_and_push_are_skipped(api, project):
    ada = RecipientFactory(project=project, external_id="ada", phone="")
    Device.objects.create(recipient=ada, token="t-1", platform="ios", active=False)

    assert deliveries(api, "ada") == {
        "email": ("queued", ""),
        "sms": ("skipped", "the user has no phone number"),
        "push": ("skipped", "the user has no active device for push"),
    }


def test_with_a_phone_and_an_active_device_sms_and_push_are_queued(api, project):
    ada = RecipientFactory(project=project, external_id="ada", phone="+14155550123")
    Device.objects.create(recipient=ada, token="t-1", platform="ios")

    assert {channel: status for channel, (status, _) in deliveries(api, "ada").items()} == {
        "email": "queued", "sms": "queued", "push": "queued"}
