import json

import pytest
from kombu import Exchange, Queue

from apps.channels.backends import locmem
from apps.channels.registry import backends_reset
from tests.fakes.smtp import FakeSmtpServer
from tests.notifications import backends

MAX_ATTEMPTS = 3


@pytest.fixture(autouse=True)
def _fresh_backends():
    backends_reset()
    yield
    backends_reset()


@pytest.fixture
def outbox(settings) -> list:
    """Email goes to the in-memory outbox; 3 attempts per delivery."""
    settings.NOTIFIER_CHANNELS = {
        "email": {"BACKEND": "apps.channels.backends.locmem.OutboxBackend", "MAX_ATTEMPTS": MAX_ATTEMPTS},
    }
    locmem.outbox.clear()
    yield locmem.outbox
    locmem.outbox.clear()


@pytest.fixture
def scripted(settings):
    """Email goes to ScriptedBackend: append exceptions or callables to `scripted.script`."""
    settings.NOTIFIER_CHANNELS = {
        "email": {"BACKEND": "tests.notifications.backends.ScriptedBackend", "MAX_ATTEMPTS": MAX_ATTEMPTS},
    }
    backends.script.clear()
    backends.accepted.clear()
    yield backends
    backends.script.clear()
    backends.accepted.clear()


@pytest.fixture
def smtp(settings, smtp) -> FakeSmtpServer:
    """Email goes through the real backend to the shared fake SMTP server."""
    settings.NOTIFIER_CHANNELS = {
        "email": {"BACKEND": "apps.channels.backends.email.DjangoEmailBackend", "MAX_ATTEMPTS": MAX_ATTEMPTS},
    }
    return smtp_configured(settings, smtp)


def smtp_configured(settings, server: FakeSmtpServer) -> FakeSmtpServer:
    """Django's SMTP settings pointed at `server` (EMAIL_URL's server, as the email backend reads it)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    return server


class PrivateQueue:
    """A channel whose RabbitMQ queue no worker consumes, so a test can read what was published."""

    channel = "reliabilitytest"
    name = f"notifications.{channel}"

    def __init__(self, app):
        self.app = app

    def drain(self) -> list[tuple[str, int | None]]:
        """Take every message in the queue: (delivery id, priority) each."""
        taken = []
        with self.app.connection_for_write() as connection:
            queue = Queue(self.name)(connection.default_channel)
            while (message := queue.get(no_ack=True)) is not None:
                args = json.loads(message.body)[0]
                taken.append((args[0], message.properties.get("priority")))
        return taken

    def empty(self) -> None:
        # Declared the way Celery declares a queue it was not configured with; emptied rather
        # than deleted, since a producer remembers what it declared and would not declare again.
        with self.app.connection_for_write() as connection:
            queue = Queue(self.name, Exchange(self.name), self.name)(connection.default_channel)
            queue.declare()
            queue.purge()


@pytest.fixture
def private_queue(settings, rabbitmq_vhost):
    from celery_app import app

    settings.NOTIFIER_CHANNELS = {
        **settings.NOTIFIER_CHANNELS,
        PrivateQueue.channel: {"BACKEND": "apps.channels.backends.locmem.OutboxBackend", "MAX_ATTEMPTS": MAX_ATTEMPTS},
    }
    queue = PrivateQueue(app)
    queue.empty()
    yield queue
    queue.empty()
