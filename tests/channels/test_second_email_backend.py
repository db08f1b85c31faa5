"""A second email backend, added in tests/channels/second_email_backend.py and chosen by settings
alone: its own contact rule decides who is reachable, and notifications go out through it."""

import pytest
from django.core import mail
from django.core.checks import run_checks
from django.test import override_settings

from apps.notifications.delivery.sending import delivery_send
from apps.notifications.models import Delivery, DeliveryStatus
from tests.channels import second_email_backend
from tests.templates.factories import EMAIL_PARTS, TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db

PARTNER = {"BACKEND": "tests.channels.second_email_backend.PartnerMailBackend", "OPTIONS": {"domain": "partner.example"}}
SMTP = {"BACKEND": "apps.channels.backends.email.DjangoEmailBackend"}


@pytest.fixture(autouse=True)
def template(project):
    second_email_backend.sent.clear()
    yield TemplateVersionFactory(template__project=project, template__key="hello", channels={"email": EMAIL_PARTS})
    second_email_backend.sent.clear()


def notify(api, to: str):
    return api.post("/api/v1/notifications", {"to": to, "template": "hello", "data": {"name": to}}, format="json")


@override_settings(NOTIFIER_CHANNELS={"email": {"BACKENDS": [PARTNER]}})
def test_a_notification_goes_out_through_the_backend_the_settings_name(api, project):
    RecipientFactory(project=project, external_id="ada", email="ada@partner.example")

    response = notify(api, "ada")
    assert response.status_code == 202, response.content
    [delivery] = Delivery.objects.filter(notification_id=response.json()["id"])
    assert delivery_send(delivery_id=str(delivery.id)).status == DeliveryStatus.SENT

    [(delivery_id, address, subject)] = second_email_backend.sent
    assert (delivery_id, address) == (str(delivery.id), "ada@partner.example")
    assert "ada" in subject
    delivery.refresh_from_db()
    assert delivery.provider_message_id == "partner-1"


@override_settings(NOTIFIER_CHANNELS={"email": {"BACKENDS": [PARTNER]}})
def test_its_own_contact_rule_decides_who_can_be_reached(api, project):
    RecipientFactory(project=project, external_id="bob", email="bob@elsewhere.example")

    response = notify(api, "bob")

    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"email": "the user has no email address at partner.example"}


@override_settings(NOTIFIER_CHANNELS={"email": {"BACKENDS": [PARTNER, SMTP]}})
def test_with_several_backends_a_user_either_can_reach_is_reachable_and_the_first_that_can_sends(api, project):
    RecipientFactory(project=project, external_id="bob", email="bob@elsewhere.example")
    RecipientFactory(project=project, external_id="ada", email="ada@partner.example")

    for user in ("ada", "bob"):  # the SMTP backend can reach bob
        response = notify(api, user)
        assert response.status_code == 202
        [delivery] = Delivery.objects.filter(notification_id=response.json()["id"])
        assert delivery_send(delivery_id=str(delivery.id)).status == DeliveryStatus.SENT

    assert [address for _, address, _ in second_email_backend.sent] == ["ada@partner.example"]
    assert [message.to for message in mail.outbox] == [["bob@elsewhere.example"]]
    # The partner cannot reach bob: no candidate for his mail, so not in its attempt either.
    assert Delivery.objects.get(notification__to="bob").attempts.get().passed_over == []


@override_settings(NOTIFIER_CHANNELS={"email": {"BACKENDS": [PARTNER, {"BACKEND": "tests.channels.nowhere.Backend"}]}})
def test_every_backend_of_a_channel_is_checked_at_startup():
    errors = [e for e in run_checks() if e.id.startswith("notifier.")]

    assert [e.id for e in errors] == ["notifier.E002"]
    assert "tests.channels.nowhere" in errors[0].msg
