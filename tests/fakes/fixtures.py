"""The fake providers as pytest fixtures, for every test that sends through a real SDK or client.

Each fake runs once per session (`<name>_server`) and a test takes it reset before and after
(`<name>`): what an earlier test received or scripted never leaks into the next. Registered for the
whole suite in tests/conftest.py; the servers start only when a test first asks for one.
"""

from collections.abc import Callable

import pytest

from tests.fakes.base import FakeServer
from tests.fakes.fcm import FakeFcmServer
from tests.fakes.smtp import FakeSmtpServer
from tests.fakes.twilio import FakeTwilioServer
from tests.fakes.webhook import WebhookReceiver


def _shared_fake(name: str, make: Callable[[], FakeServer]):
    """A session-scoped fake `<name>_server` and the fixture `<name>` that resets it around a test."""

    @pytest.fixture(scope="session", name=f"{name}_server")
    def server():
        with make() as fake:
            yield fake

    @pytest.fixture(name=name)
    def reset_around(request):
        fake = request.getfixturevalue(f"{name}_server")
        fake.reset()
        yield fake
        fake.reset()

    return server, reset_around


smtp_server, smtp = _shared_fake("smtp", FakeSmtpServer)
twilio_server, twilio = _shared_fake("twilio", FakeTwilioServer)
fcm_server, fcm = _shared_fake("fcm", FakeFcmServer)
receiver_server, receiver = _shared_fake("receiver", WebhookReceiver)


@pytest.fixture(scope="session")
def fcm_credentials_file(fcm_server, tmp_path_factory) -> str:
    """A service-account key the fake FCM accepts: its token_uri is the fake's OAuth endpoint."""
    path = tmp_path_factory.mktemp("fcm") / "service-account.json"
    fcm_server.write_service_account(path)
    return str(path)
