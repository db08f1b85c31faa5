"""The email backend sends in two round trips where the server offers PIPELINING, and the server
receives the same message and gives the same answers either way."""

import re
import smtplib

import pytest

from apps.channels.backends.email import DjangoEmailBackend
from apps.channels.backends.smtp_pipelining import recipient_quoted
from apps.channels.base import PermanentProviderError, TransientProviderError
from tests.channels.messages import message_for
from tests.fakes.smtp import FakeSmtpServer

CONTENT = {"subject": "Hello Ada", "text": "Hi Ada,\n.a line starting with a dot\n", "html": "<p>Hi Ada</p>"}
# What differs between two sends of the same content: the date, the ids, the MIME boundary.
_VARYING = re.compile(rb"^(Date|Message-ID|X-Notifier-Delivery-Id): .*$|=+\d+==", re.MULTILINE)


@pytest.fixture(params=[True, False], ids=["pipelining", "one command at a time"])
def server(request):
    with FakeSmtpServer(pipelining=request.param) as fake:
        yield fake


def backend_for(server: FakeSmtpServer) -> DjangoEmailBackend:
    return DjangoEmailBackend(url=f"smtp://{server.host}:{server.port}", from_email="Shop <shop@example.com>")


def send(backend: DjangoEmailBackend, address: str):
    return backend.send(message_for("email", CONTENT, email=address))


def test_the_server_receives_the_message_as_sent_without_pipelining(server):
    result = send(backend_for(server), "ada@example.com")

    [mail] = server.received
    assert (mail.mail_from, mail.rcpt_tos) == ("shop@example.com", ("ada@example.com",))
    assert mail.message["Message-ID"] == result.provider_message_id
    text = mail.message.get_body(("plain",)).get_content()
    assert text.splitlines() == CONTENT["text"].splitlines()  # the line starting with a dot un-stuffed
    with FakeSmtpServer(pipelining=False) as plain:
        send(backend_for(plain), "ada@example.com")
        [reference] = plain.received
    assert _VARYING.sub(b"", mail.raw) == _VARYING.sub(b"", reference.raw)


def test_a_refused_recipient_fails_for_good_and_the_next_email_goes_out(server):
    server.reject_recipient("gone@example.com", 550, "5.1.1 mailbox unavailable")
    backend = backend_for(server)

    with pytest.raises(PermanentProviderError) as refused:
        send(backend, "gone@example.com")
    send(backend, "ada@example.com")

    assert (refused.value.code, refused.value.message) == ("550", "SMTP 550 5.1.1 mailbox unavailable")
    assert [mail.rcpt_tos for mail in server.received] == [("ada@example.com",)]


@pytest.mark.parametrize(("code", "error"), [(451, TransientProviderError), (554, PermanentProviderError)])
def test_a_refused_message_is_the_providers_answer_and_the_next_email_goes_out(server, code, error):
    server.fail_next(1, code, "refused")
    backend = backend_for(server)

    with pytest.raises(error) as refused:
        send(backend, "ada@example.com")
    send(backend, "bob@example.com")

    assert refused.value.code == str(code)
    assert [mail.rcpt_tos for mail in server.received] == [("bob@example.com",)]



@pytest.mark.parametrize("address", [
    "ada@example.com", "first.last+tag@mail.example.co.uk", "A_B%c-d@EXAMPLE.COM", "a..b@example.com",
    ".a@example.com", "a@b", "o'brien@example.com", '"quoted local"@example.com', "Ada <ada@example.com>",
    "ada@example.com (Ada)", "<ada@example.com>", "ada@[192.0.2.1]", "not an address", "",
])
def test_the_envelope_names_the_recipient_as_smtplib_does(address):
    assert recipient_quoted(address) == smtplib.quoteaddr(address)
