"""Provider failover on the email channel: two real SMTP servers (aiosmtpd), the first of which
refuses connections (nothing listens on its port) or answers as scripted; circuits in the run's
Redis. What a user notices: where the mail arrives, and what the attempt log says."""

import time

import pytest
from rest_framework.test import APIClient

from apps.channels.registry import backends_reset
from apps.notifications.delivery.sending import delivery_send
from apps.notifications.models import Delivery, DeliveryStatus
from tests.fakes.smtp import FakeSmtpServer
from tests.notifications.factories import DeliveryFactory
from tests.support.processes import free_port
from tests.test_settings import manage, prod_env

pytestmark = pytest.mark.django_db

THRESHOLD, COOL_DOWN = 3, 1.0
EMAIL = "apps.channels.backends.email.DjangoEmailBackend"


class Servers:
    def __init__(self):
        self.first_port = free_port()  # nothing listens here until `first_comes_back`
        self.first: FakeSmtpServer | None = None
        self.second = FakeSmtpServer()

    @property
    def first_name(self) -> str:
        return f"smtp:127.0.0.1:{self.first_port}"

    @property
    def second_name(self) -> str:
        return f"smtp:127.0.0.1:{self.second.port}"

    def first_comes_back(self) -> FakeSmtpServer:
        self.first = FakeSmtpServer(port=self.first_port)
        self.first.start()
        return self.first


@pytest.fixture
def servers(settings, redis_for_run):
    pair = Servers()
    pair.second.start()
    settings.NOTIFIER_CHANNELS = {"email": {"MAX_ATTEMPTS": 3, "BACKENDS": [
        {"BACKEND": EMAIL, "OPTIONS": {"url": f"smtp://127.0.0.1:{pair.first_port}"}},
        {"BACKEND": EMAIL, "OPTIONS": {"url": pair.second.url}},
    ]}}
    settings.NOTIFIER_CIRCUIT_FAILURE_THRESHOLD = THRESHOLD
    settings.NOTIFIER_CIRCUIT_COOL_DOWN_SECONDS = COOL_DOWN
    settings.NOTIFIER_CIRCUIT_STATE_CACHE_SECONDS = 0.0
    backends_reset()
    yield pair
    backends_reset()
    pair.second.stop()
    if pair.first is not None:
        pair.first.stop()


def send(address: str = "ada@example.com", **fields) -> Delivery:
    delivery = DeliveryFactory(notification__recipient__email=address, **fields)
    delivery_send(delivery_id=str(delivery.id))
    delivery.refresh_from_db()
    return delivery


def attempt_log(delivery: Delivery) -> list[tuple]:
    return [(a.outcome, a.provider, [(p["provider"], p["error_code"]) for p in a.passed_over], a.error_code)
            for a in delivery.attempts.order_by("number")]


def test_mail_goes_through_the_second_server_when_the_first_refuses_connections(servers):
    delivery = send()

    assert delivery.status == DeliveryStatus.SENT
    assert attempt_log(delivery) == [("sent", servers.second_name, [(servers.first_name, "connection")], "")]
    [message] = servers.second.received_for("ada@example.com")
    assert message["Message-ID"] == delivery.provider_message_id


def test_once_the_first_servers_circuit_opens_it_is_passed_over_without_being_asked(servers):
    for n in range(THRESHOLD):
        assert send(f"u{n}@example.com").status == DeliveryStatus.SENT

    started = time.monotonic()
    delivery = send("later@example.com")

    assert delivery.status == DeliveryStatus.SENT
    assert attempt_log(delivery) == [("sent", servers.second_name, [(servers.first_name, "circuit_open")], "")]
    assert time.monotonic() - started < 1
    assert len(servers.second.messages) == THRESHOLD + 1


def test_when_the_first_server_comes_back_mail_returns_to_it_after_the_cool_down(servers):
    for n in range(THRESHOLD):
        send(f"u{n}@example.com")
    first = servers.first_comes_back()
    assert attempt_log(send("still@example.com"))[0][1] == servers.second_name  # open: not asked yet

    time.sleep(COOL_DOWN + 0.2)
    probe = send("probe@example.com")
    after = send("after@example.com")

    assert (probe.status, after.status) == (DeliveryStatus.SENT, DeliveryStatus.SENT)
    assert [attempt_log(d) for d in (probe, after)] == [[("sent", servers.first_name, [], "")]] * 2
    assert sorted(m["To"] for m in first.messages) == ["after@example.com", "probe@example.com"]


def test_a_permanent_refusal_does_not_fail_over(servers):
    first = servers.first_comes_back()
    first.reject_recipient("gone@example.com", code=550, message="5.1.1 mailbox unavailable")

    delivery = send("gone@example.com")

    assert delivery.status == DeliveryStatus.FAILED
    assert attempt_log(delivery) == [("permanent_error", servers.first_name, [], "550")]
    assert servers.second.messages == []


def test_with_every_provider_failing_the_delivery_is_retried_with_its_backoff_and_not_lost(servers):
    servers.second.fail_next(1, 451, "4.3.0 try again later")

    delivery = send()

    assert delivery.status == DeliveryStatus.RETRYING and delivery.next_attempt_at is not None
    assert attempt_log(delivery) == [
        ("transient_error", servers.second_name, [(servers.first_name, "connection")], "451")]
    Delivery.objects.filter(id=delivery.id).update(next_attempt_at=None)  # its backoff, elapsed
    delivery_send(delivery_id=str(delivery.id))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert len(servers.second.received_for("ada@example.com")) == 1


def test_with_every_circuit_open_the_attempt_fails_for_now_without_asking_anyone(servers):
    servers.second.set_failure_rate(1.0, 421)
    for n in range(THRESHOLD):
        send(f"u{n}@example.com")  # both servers fail: both circuits open

    delivery = send()

    assert delivery.status == DeliveryStatus.RETRYING
    assert attempt_log(delivery) == [("transient_error", "", [(servers.first_name, "circuit_open"),
                                                              (servers.second_name, "circuit_open")], "circuit_open")]


def test_each_breakers_state_is_in_the_metrics_and_on_the_dashboard(servers, admin_client):
    for n in range(THRESHOLD):
        send(f"u{n}@example.com")

    metrics = APIClient().get("/metrics").content.decode()
    assert f'notifier_provider_circuit_state{{channel="email",provider="{servers.first_name}"}} 2.0' in metrics
    assert f'notifier_provider_circuit_state{{channel="email",provider="{servers.second_name}"}} 0.0' in metrics
    page = admin_client.get("/admin/dashboard/").content.decode()
    assert f'data-provider="{servers.first_name}" data-state="open"' in page
    assert f'data-provider="{servers.second_name}" data-state="closed"' in page


def test_the_api_and_the_console_timeline_name_the_provider(servers, api, project, admin_client):
    delivery = send(notification__project=project)

    body = api.get(f"/api/v1/notifications/{delivery.notification_id}").json()
    [attempt] = body["deliveries"][0]["attempts"]
    assert attempt["provider"] == servers.second_name
    assert attempt["passed_over"][0]["provider"] == servers.first_name
    assert attempt["passed_over"][0]["error_code"] == "connection"
    page = admin_client.get(f"/admin/notifications/notification/{delivery.notification_id}/change/").content.decode()
    assert f"via {servers.second_name}" in page and f"passed over {servers.first_name}: connection" in page


@pytest.mark.slow
def test_email_failover_urls_add_servers_after_email_url_and_a_bad_one_stops_startup():
    good = manage("shell", "-c", "from apps.channels.registry import providers_get; "
                  "print([p.name for p in providers_get('email')])",
                  env=prod_env(EMAIL_URL="smtp://mail.example:25",
                               EMAIL_FAILOVER_URLS="smtp+tls://u:secret@backup.example:587 smtp://third.example:2525"))
    assert good.returncode == 0, good.stderr
    assert "['smtp:mail.example:25', 'smtp:backup.example:587', 'smtp:third.example:2525']" in good.stdout
    assert "secret" not in good.stdout

    bad = manage("check", env=prod_env(EMAIL_URL="smtp://mail.example:25", EMAIL_FAILOVER_URLS="http://nope"))
    assert bad.returncode != 0 and "EMAIL_FAILOVER_URLS" in bad.stderr


def test_without_redis_failover_still_works_and_the_circuits_are_not_shown(servers, settings, admin_client):
    settings.REDIS_URL = ""
    for n in range(THRESHOLD):
        send(f"u{n}@example.com")

    delivery = send("later@example.com")  # this process's own circuit opened

    assert attempt_log(delivery) == [("sent", servers.second_name, [(servers.first_name, "circuit_open")], "")]
    assert "notifier_provider_circuit_state" not in APIClient().get("/metrics").content.decode()
    assert "Circuits cannot be read" in admin_client.get("/admin/dashboard/").content.decode()


def test_a_channel_of_one_provider_keeps_asking_it_while_its_circuit_is_open(servers, settings):
    settings.NOTIFIER_CHANNELS = {"email": {"MAX_ATTEMPTS": 3, "BACKENDS": [
        {"BACKEND": EMAIL, "OPTIONS": {"url": servers.second.url}}]}}
    backends_reset()
    servers.second.fail_next(THRESHOLD, 451, "4.3.0 try again later")
    for n in range(THRESHOLD):
        assert send(f"u{n}@example.com").status == DeliveryStatus.RETRYING
    metrics = APIClient().get("/metrics").content.decode()
    assert f'notifier_provider_circuit_state{{channel="email",provider="{servers.second_name}"}} 2.0' in metrics

    delivery = send("meanwhile@example.com")  # nowhere else to go: holding it back would only add a wait

    assert delivery.status == DeliveryStatus.SENT
    assert attempt_log(delivery) == [("sent", servers.second_name, [], "")]
