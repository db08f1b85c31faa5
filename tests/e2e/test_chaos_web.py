"""Chaos from the outside, as product backends meet it: notifications POSTed by HTTP clients while
a web process dies, Redis restarts, the database and RabbitMQ go away and workers are SIGKILLed.

Every process runs on the product's default deadlines (the sweep's interval, the queued and
unpublished timeouts), as a deployment would: what is under test is that those defaults find a
publish that never happened within seconds, not the shortened ones of the other e2e tests.
"""

import random
import signal
import subprocess
import threading
import time
from collections import Counter
from contextlib import ExitStack
from datetime import timedelta

import pytest
import requests
from django.conf import settings

from apps.channels.backends.email import DELIVERY_ID_HEADER
from apps.notifications.models import ACTIVE_STATUSES, AttemptOutcome, Delivery, DeliveryAttempt
from tests.e2e.conftest import E2E_SETTINGS, queue_depth
from tests.fakes.silent_tcp import SilentTcpServer
from tests.support.outages import database_closed
from tests.support.processes import (
    ServiceProcess,
    celery_beat,
    celery_worker,
    free_port,
    wait_until,
    web_server,
)
from tests.templates.factories import TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

TEMPLATE = {"email": {"subject": "Chaos {{ n }}", "text": "n={{ n }}"}}


@pytest.fixture
def default_env(e2e_env):
    """The session's process environment without the shortened deadlines of the other e2e tests."""
    return {key: value for key, value in e2e_env.items() if key not in E2E_SETTINGS}


def _post(base_url: str, key: str, body: dict, idempotency_key: str, *, timeout: float = 30) -> requests.Response:
    return requests.post(f"{base_url}/api/v1/notifications", json=body, timeout=timeout,
                         headers={"Authorization": f"Api-Key {key}", "Idempotency-Key": idempotency_key})


@pytest.mark.timeout(180)
def test_a_web_process_killed_between_commit_and_publish_loses_nothing(
    project, api_key, default_env, process_logs, smtp
):
    """The web process commits the notification and answers 202 without waiting for the broker;
    its publishing thread then hangs (the broker accepts the connection and never answers) and
    the process is SIGKILLed there: no message was ever published, and the one in its memory is
    gone. The sweep of a beat on default settings publishes it, and it is sent within 60 s of the
    commit."""
    RecipientFactory(project=project, external_id="lost-publish", email="lost-publish@example.com")
    TemplateVersionFactory(template__project=project, template__key="chaos", channels=TEMPLATE)

    with ExitStack() as stack:
        stack.enter_context(celery_worker(default_env, process_logs))
        stack.enter_context(celery_beat(default_env, process_logs))
        silent_broker = stack.enter_context(SilentTcpServer())
        broker = f"amqp://guest:guest@127.0.0.1:{silent_broker.port}//"
        server, base_url = web_server({**default_env, "CELERY_BROKER_URL": broker}, process_logs, processes=1)
        stack.enter_context(server)

        answers = []
        request = threading.Thread(target=lambda: answers.append(_try_post(
            base_url, api_key.raw_key, {"to": "lost-publish", "template": "chaos", "data": {"n": 1}}, "lost-1")))
        request.start()
        delivery = wait_until(lambda: Delivery.objects.filter(notification__project=project).first(),
                              timeout=30, message="the notification to be committed")
        committed_at = delivery.status_changed_at
        # Accepted without a word from the broker: the publish waits in the process's thread.
        wait_until(lambda: answers, timeout=10, message="the 202")
        time.sleep(0.5)  # the publishing thread is now waiting on the silent broker
        delivery.refresh_from_db()
        assert answers == [202] and delivery.status == "queued"
        server.kill(signal.SIGKILL)
        request.join(timeout=30)

        wait_until(lambda: smtp.received_for("lost-publish@example.com"), timeout=90,
                   message="the email to reach the mail server")
        # The worker records the send just after the mail server's answer: wait for that too.
        wait_until(lambda: Delivery.objects.filter(id=delivery.id, sent_at__isnull=False).exists(), timeout=30,
                   message="the send to be recorded")
        delivery.refresh_from_db()

    took = (delivery.sent_at - committed_at).total_seconds()
    print(f"\nthe unpublished delivery was sent {took:.1f}s after its commit")
    assert delivery.status == "sent"
    assert took <= 60
    assert len(smtp.received_for("lost-publish@example.com")) == 1


def _try_post(base_url: str, key: str, body: dict, idempotency_key: str) -> int | None:
    try:
        return _post(base_url, key, body, idempotency_key).status_code
    except requests.RequestException:
        return None


TOTAL, CLIENTS, USERS = 2000, 16, 100


class PrivateRedis:
    """A redis-server of this test's own, on a free port, so restarting it touches no other run."""

    def __init__(self, log_dir):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_dir = log_dir
        self.process: ServiceProcess | None = None

    def start(self) -> None:
        self.process = ServiceProcess(
            "redis", ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                      "no"], {}, self.log_dir, ready_text="Ready to accept connections").start()

    def restart(self) -> None:
        self.process.kill(signal.SIGKILL)
        self.process.process.wait(timeout=10)
        self.start()

    def stop(self) -> None:
        if self.process:
            self.process.stop()


class Senders:
    """CLIENTS threads POSTing TOTAL notifications, each with an Idempotency-Key of its own and
    retried on anything but a 202 (a dropped connection, a 503 while the database is away), as a
    careful product backend does: every one ends accepted exactly once."""

    def __init__(self, base_url: str, key: str):
        self.base_url, self.key = base_url, key
        self.accepted: dict[str, str] = {}  # idempotency key → notification id
        self.answers: Counter = Counter()
        self._lock = threading.Lock()
        self._next = 0
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        assert not any(thread.is_alive() for thread in self._threads), f"senders still running: {self.answers}"

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= TOTAL:
                return None
            self._next += 1
            return self._next - 1

    def _run(self) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Api-Key {self.key}"
        while (n := self._take()) is not None:
            idempotency_key = f"chaos-{n}"
            body = {"to": f"w{n % USERS}", "template": "chaos", "data": {"n": n}}
            for _ in range(200):
                try:
                    response = session.post(f"{self.base_url}/api/v1/notifications", json=body, timeout=30,
                                            headers={"Idempotency-Key": idempotency_key})
                    outcome = response.status_code
                except requests.RequestException as exc:
                    outcome = type(exc).__name__
                    session.close()
                with self._lock:
                    self.answers[outcome] += 1
                if outcome == 202:
                    with self._lock:
                        self.accepted[idempotency_key] = response.json()["id"]
                    break
                assert outcome != 500, response.text
                time.sleep(0.2 + random.random() * 0.3)


@pytest.mark.timeout(600)
def test_http_chaos_every_accepted_notification_is_sent_once_within_a_minute_of_the_services_return(
    project, api_key, default_env, process_logs, smtp, rabbitmq
):
    for n in range(USERS):
        RecipientFactory(project=project, external_id=f"w{n}", email=f"w{n}@example.com")
    TemplateVersionFactory(template__project=project, template__key="chaos", channels=TEMPLATE)
    smtp.set_failure_rate(0.1, 451, seed=7)
    events: list[str] = []
    started = time.monotonic()

    def event(text: str) -> None:
        events.append(f"{time.monotonic() - started:6.1f}s {text}")

    with ExitStack() as stack:
        redis = PrivateRedis(process_logs)
        redis.start()
        stack.callback(redis.stop)
        env = {**default_env, "REDIS_URL": redis.url}
        workers = [stack.enter_context(celery_worker(env, process_logs, concurrency=3)) for _ in range(2)]
        stack.enter_context(celery_beat(env, process_logs))
        server, base_url = web_server(env, process_logs, processes=2)
        stack.enter_context(server)

        senders = Senders(base_url, api_key.raw_key)
        senders.start()

        def when_accepted(count: int) -> None:
            wait_until(lambda: len(senders.accepted) >= count, timeout=180, interval=0.1,
                       message=f"{count} notifications accepted")

        def kill_a_worker(index: int) -> None:
            workers[index].kill()  # the whole process group: the worker and its pool children
            event(f"SIGKILL {workers[index].name}")
            workers[index] = stack.enter_context(celery_worker(env, process_logs, concurrency=3))

        when_accepted(250)
        child = _web_child(server)
        subprocess.run(["kill", "-KILL", str(child)], check=True)
        event(f"SIGKILL web process {child}")
        when_accepted(500)
        redis.restart()
        event("Redis restarted")
        when_accepted(750)
        with database_closed():
            event("database closed")
            time.sleep(10)
        event("database open")
        when_accepted(1000)
        kill_a_worker(0)
        when_accepted(1250)
        rabbitmq.stop()
        event("RabbitMQ stopped")
        try:
            time.sleep(5)
        finally:
            rabbitmq.start()
        services_back = time.monotonic()
        event("RabbitMQ started")
        when_accepted(1500)
        kill_a_worker(1)
        senders.join(timeout=300)
        event(f"all {len(senders.accepted)} accepted")

        deliveries = Delivery.objects.filter(notification__project=project)
        wait_until(lambda: not deliveries.filter(status__in=ACTIVE_STATUSES).exists(), timeout=300, interval=1,
                   message="every delivery to reach a final state")
        event("all final")
        wait_until(lambda: queue_depth("notifications.email") == 0, timeout=60, message="the email queue to drain")

    statuses = Counter(deliveries.values_list("status", flat=True))
    received = Counter(message[DELIVERY_ID_HEADER] for message in smtp.messages)
    duplicates = {delivery_id: count - 1 for delivery_id, count in received.items() if count > 1}
    lost = {str(d) for d in DeliveryAttempt.objects.filter(outcome=AttemptOutcome.WORKER_LOST)
            .values_list("delivery_id", flat=True)}
    print("\nchaos over HTTP:", *events, sep="\n  ")
    print(f"  answers {dict(senders.answers)}; deliveries {dict(statuses)}; duplicates {sum(duplicates.values())}")

    # Every notification accepted exactly once, whatever the client had to retry.
    assert len(senders.accepted) == TOTAL
    assert deliveries.count() == TOTAL
    assert set(senders.accepted.values()) == {str(n) for n in deliveries.values_list("notification_id", flat=True)}
    assert statuses == {"sent": TOTAL}
    assert set(received) == {str(d) for d in deliveries.values_list("id", flat=True)}
    assert set(duplicates) <= lost, duplicates  # the documented window: sent, then the worker died

    # Late: any sent more than 60 s after both its commit and the database's and broker's return.
    # A delivery a SIGKILLed worker held mid-send waits for the sending deadline instead.
    back_at = _wall_clock(services_back)
    sending_deadline = timedelta(seconds=settings.NOTIFIER_SENDING_TIMEOUT_SECONDS + settings.NOTIFIER_SWEEP_INTERVAL_SECONDS)
    late = [
        (str(d.id), d.sent_at - max(d.notification.created_at, back_at))
        for d in deliveries.select_related("notification")
        if d.sent_at - max(d.notification.created_at, back_at) > (sending_deadline if str(d.id) in lost
                                                                  else timedelta(seconds=60))
    ]
    assert not late, late[:10]
    assert queue_depth("notifications.email.dead") == 0


def _web_child(server: ServiceProcess) -> int:
    """One of the web supervisor's worker processes."""
    children = subprocess.run(["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True).stdout.split()
    workers = [int(pid) for pid in children if b"resource_tracker" not in _cmdline(int(pid))]
    assert workers, "the web supervisor has no worker processes"
    return workers[0]


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read()
    except OSError:
        return b""


def _wall_clock(monotonic_at: float):
    from django.utils import timezone

    return timezone.now() - timedelta(seconds=time.monotonic() - monotonic_at)

