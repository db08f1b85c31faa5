"""The emails of one batch, as the SMTP server (the real aiosmtpd fake) receives them: built once
per content, they differ only in what is each recipient's own, and each is well-formed."""

import email
import email.policy

import pytest

from apps.channels.headers import DELIVERY_ID_HEADER
from apps.notifications.delivery.sending import deliveries_send
from apps.notifications.models import DeliveryStatus
from apps.users.unsubscribe import unsubscribe_token_read
from tests.notifications.factories import DeliveryFactory, NotificationFactory
from tests.projects.factories import ProjectFactory
from tests.templates.factories import TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db(transaction=True)

PER_RECIPIENT = {"To", "Message-ID", DELIVERY_ID_HEADER, "List-Unsubscribe", "Date"}
PARTS = {
    "subject": "Grüße, {{ name }}: Ihre Bestellung {{ order }} ist unterwegs — ein Betreff, der gefaltet wird",
    "text": "Hallo {{ name }},\nBestellung {{ order }} = 100 % unterwegs.  \n" + "x" * 1200,
    "html": "<p>Hallo <b>{{ name }}</b>, Bestellung {{ order }} ist unterwegs.</p>",
}


def _batch(project, version, datas: list[dict]):
    deliveries = []
    for n, data in enumerate(datas):
        recipient = RecipientFactory(project=project, email=f"reader{n}@example.com")
        notification = NotificationFactory(project=project, recipient=recipient, template_version=version,
                                           data=data, category="orders")
        deliveries.append(DeliveryFactory(notification=notification))
    return deliveries


def _raw_messages(smtp) -> dict[str, email.message.EmailMessage]:
    """Each received message by its recipient, parsed again from the bytes that went over the wire."""
    return {received.rcpt_tos[0]: email.message_from_bytes(received.raw, policy=email.policy.default)
            for received in smtp.received}


def test_the_emails_of_one_batch_differ_only_in_each_recipients_headers(smtp, settings):
    settings.PUBLIC_BASE_URL = "https://notifier.example.com"
    project = ProjectFactory()
    version = TemplateVersionFactory(template__project=project, channels={"email": PARTS})
    deliveries = _batch(project, version, [{"name": "Zoë", "order": 7}] * 3)

    result = deliveries_send(delivery_ids=[str(d.id) for d in deliveries])

    assert {o.status for o in result.outcomes.values()} == {DeliveryStatus.SENT}
    messages = _raw_messages(smtp)
    assert sorted(messages) == [f"reader{n}@example.com" for n in range(3)]
    for delivery in deliveries:
        message = messages[delivery.notification.recipient.email]
        assert message.defects == [] and all(not part.defects for part in message.walk())
        assert message["To"] == delivery.notification.recipient.email
        assert message[DELIVERY_ID_HEADER] == str(delivery.id)
        assert message["Message-ID"] == delivery.attempts.get().provider_message_id
        assert message["Message-ID"].startswith(f"<{delivery.id}@")
        link = message["List-Unsubscribe"].removeprefix("<https://notifier.example.com/unsubscribe/").rstrip(">")
        target = unsubscribe_token_read(link)
        assert (target.recipient_id, target.category) == (delivery.notification.recipient_id, "orders")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Subject"] == "Grüße, Zoë: Ihre Bestellung 7 ist unterwegs — ein Betreff, der gefaltet wird"
        assert message.get_content_type() == "multipart/alternative"
        text = message.get_body(("plain",)).get_content()
        assert text.splitlines() == ["Hallo Zoë,", "Bestellung 7 = 100 % unterwegs.  ", "x" * 1200]
        assert message.get_body(("html",)).get_content().strip() == (
            "<p>Hallo <b>Zoë</b>, Bestellung 7 ist unterwegs.</p>")
        # On the wire: CRLF line ends, ASCII only, no line over RFC 5322's 998 (78 where a header can fold).
        raw = smtp_raw(smtp, delivery.notification.recipient.email)
        assert b"\n" not in raw.replace(b"\r\n", b"") and raw.isascii()
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    # Everything else is the same bytes for every recipient.
    shared = [[(name, value) for name, value in message.items() if name not in PER_RECIPIENT]
              for message in messages.values()]
    assert shared[0] == shared[1] == shared[2]
    bodies = {message.get_body(("plain",)).get_content() for message in messages.values()}
    assert len(bodies) == 1


def smtp_raw(smtp, address: str) -> bytes:
    [received] = [r for r in smtp.received if address in r.rcpt_tos]
    return received.raw


def test_a_delivery_whose_data_differs_from_the_batchs_renders_its_own(smtp):
    project = ProjectFactory()
    version = TemplateVersionFactory(template__project=project, channels={
        "email": {"subject": "Order {{ order }}", "text": "Hello {{ name }}"}})
    datas = [{"name": "Ada", "order": 1}, {"name": "Ada", "order": 1}, {"name": "Grace", "order": 2},
             {"order": 1, "name": "Ada"}]
    deliveries = _batch(project, version, datas)

    deliveries_send(delivery_ids=[str(d.id) for d in deliveries])

    messages = _raw_messages(smtp)
    seen = [(messages[d.notification.recipient.email]["Subject"],
             messages[d.notification.recipient.email].get_content().strip()) for d in deliveries]
    assert seen == [("Order 1", "Hello Ada"), ("Order 1", "Hello Ada"), ("Order 2", "Hello Grace"),
                    ("Order 1", "Hello Ada")]


def test_a_plain_text_email_is_one_7bit_part_and_a_subject_with_a_line_break_fails_for_good(smtp):
    project = ProjectFactory()
    plain = TemplateVersionFactory(template__project=project, channels={
        "email": {"subject": "Plain {{ n }}", "text": "Line one\r\nLine two\n.\nafter a lone dot"}})
    broken = TemplateVersionFactory(template__project=project, channels={
        "email": {"subject": "Broken {{ n|safe }}", "text": "never sent"}})
    [sent] = _batch(project, plain, [{"n": 1}])
    [refused] = _batch(project, broken, [{"n": "x\r\nBcc: someone@example.com"}])

    result = deliveries_send(delivery_ids=[str(sent.id), str(refused.id)])

    assert result.outcomes[str(refused.id)].status == DeliveryStatus.FAILED
    [message] = _raw_messages(smtp).values()
    assert message.get_content_type() == "text/plain" and message["Content-Transfer-Encoding"] == "7bit"
    assert message.get_content().splitlines() == ["Line one", "Line two", ".", "after a lone dot"]
    assert message["Bcc"] is None


@pytest.mark.parametrize("footer", ["{{ preferences_url }}", "{{ preferences_url|upper }}"])
def test_each_email_of_a_batch_rendered_once_still_links_its_own_preference_page(smtp, settings, footer):
    settings.PUBLIC_BASE_URL = "https://notifier.example.com"
    project = ProjectFactory()
    version = TemplateVersionFactory(template__project=project, channels={"email": {
        "subject": "News", "text": f"Hello {{{{ name }}}}.\nSettings: {footer}",
        "html": f'<a href="{footer}">Settings</a>'}})
    deliveries = _batch(project, version, [{"name": "Ada"}] * 3)

    deliveries_send(delivery_ids=[str(d.id) for d in deliveries])

    messages = _raw_messages(smtp)
    links = set()
    for delivery in deliveries:
        message = messages[delivery.notification.recipient.email]
        text = message.get_body(("plain",)).get_content().strip()
        link = text.rsplit("Settings: ", 1)[1]
        assert link.lower().startswith("https://notifier.example.com/preferences/")
        assert message.get_body(("html",)).get_content().strip() == f'<a href="{link}">Settings</a>'
        links.add(link)
    assert len(links) == 3  # each recipient's own
