"""Fake providers for the channel backend tests: started once per session, reset around each test."""

import pytest

from tests.fakes.fcm import FakeFcmServer
from tests.fakes.twilio import FakeTwilioServer


@pytest.fixture(scope="session")
def fake_providers():
    with FakeTwilioServer() as twilio, FakeFcmServer() as fcm:
        yield {"twilio": twilio, "fcm": fcm}


def _reset_around(server):
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def twilio(fake_providers):
    yield from _reset_around(fake_providers["twilio"])


@pytest.fixture
def fcm(fake_providers):
    yield from _reset_around(fake_providers["fcm"])


@pytest.fixture(scope="session")
def fcm_credentials_file(fake_providers, tmp_path_factory) -> str:
    """A service-account key the fake FCM accepts, whose token_uri is the fake."""
    path = tmp_path_factory.mktemp("fcm") / "service-account.json"
    fake_providers["fcm"].write_service_account(path)
    return str(path)
