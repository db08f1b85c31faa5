"""Fixtures that run the real thing: Celery workers, beat and web processes on RabbitMQ and
PostgreSQL, sending through the real provider SDKs to a real SMTP server and fake Twilio and FCM
servers (tests/fakes/fixtures.py). Processes are shared by the session and configured for every
channel; the database is flushed after each test (transactional tests), the fake servers reset."""

import os
import socket
import subprocess
from urllib.parse import urlparse

import pytest
import requests
from django.conf import settings
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.e2e.clients import Api
from tests.support.processes import (
    celery_beat,
    celery_worker,
    free_port,
    process_env,
    test_database_url,
    wait_until,
    web_server,
)
from tests.support.services import rabbitmqctl

TWILIO_FROM_NUMBER = "+15005550006"

# Deadlines short enough for a test to watch the sweep recover what was lost.
E2E_SETTINGS = {
    "NOTIFIER_SWEEP_INTERVAL_SECONDS": 1,
    "NOTIFIER_QUEUED_TIMEOUT_SECONDS": 20,
    "NOTIFIER_RETRY_GRACE_SECONDS": 5,
    "NOTIFIER_SEND_TIME_LIMIT_SECONDS": 15,
    "NOTIFIER_SENDING_TIMEOUT_SECONDS": 20,
    "NOTIFIER_RETRY_BACKOFF_BASE_SECONDS": 0.5,
    "NOTIFIER_RETRY_BACKOFF_MAX_SECONDS": 4,
    "NOTIFIER_BROADCAST_STALE_SECONDS": 3,
}


@pytest.fixture(scope="session")
def process_logs(tmp_path_factory):
    return tmp_path_factory.mktemp("process-logs")


@pytest.fixture(scope="session")
def web_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def e2e_env(django_db_setup, django_db_blocker, rabbitmq_vhost, smtp_server, twilio_server, fcm_server,
            fcm_credentials_file, web_port):
    """The environment of every process: every channel configured, providers faked on loopback.
    PUBLIC_BASE_URL is the session's web process, so Twilio's status callbacks reach it. The
    processes log JSON as in production, and share the metrics folder the settings name by default,
    as the processes of one host do."""
    with django_db_blocker.unblock():
        database_url = test_database_url()
    return process_env(
        DATABASE_URL=database_url,
        EMAIL_URL=smtp_server.url,
        TWILIO_ACCOUNT_SID=twilio_server.account_sid,
        TWILIO_AUTH_TOKEN=twilio_server.auth_token,
        TWILIO_FROM_NUMBER=TWILIO_FROM_NUMBER,
        TWILIO_API_BASE_URL=twilio_server.base_url,
        FCM_CREDENTIALS_FILE=fcm_credentials_file,
        FCM_API_BASE_URL=fcm_server.base_url,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}",
        NOTIFIER_LOG_FORMAT="json",
        **E2E_SETTINGS,
    )


@pytest.fixture(scope="session")
def worker(e2e_env, process_logs):
    # Earlier tests published for rows their transactions rolled back or flushed; this worker would
    # take those messages and dead-letter them, and end-to-end tests count dead letters.
    queues_purge()
    with celery_worker(e2e_env, process_logs) as process:
        yield process


@pytest.fixture(scope="session")
def beat(e2e_env, process_logs):
    with celery_beat(e2e_env, process_logs) as process:
        yield process


@pytest.fixture(scope="session")
def web(e2e_env, process_logs, web_port):
    server, base_url = web_server(e2e_env, process_logs, port=web_port)
    with server:
        yield base_url


@pytest.fixture
def http(api_key, web) -> requests.Session:
    """A requests session for the web process, authenticated as `project`; relative URLs allowed."""
    session = Api(web, api_key.raw_key)
    yield session
    session.close()


CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    """Debian's Chromium, headless, driven by its chromedriver; its console is kept for
    `browser.get_log("browser")`."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: `make test` installs Debian's chromium and chromium-driver when "
                    "run as root; otherwise `apt-get install chromium chromium-driver`.")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # with the driver's path below, selenium never downloads a browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def notification_when_final(http, notification_id: str, timeout: float = 30) -> dict:
    """Poll the API until no delivery of the notification is still moving; return its body."""

    def final():
        body = http.get(f"/api/v1/notifications/{notification_id}").json()
        return body if body["status"] not in ("pending", "processing") else None

    return wait_until(final, timeout=timeout, message=f"notification {notification_id} to finish")


# --- Reliability: stopping and restarting RabbitMQ (outage and chaos tests) ------------------------

class RabbitMQ:
    """Control of the local RabbitMQ node. It is shared by every run on this machine: an outage
    here breaks other runs' connections for its duration, so tests keep them short and few."""

    host, port = "127.0.0.1", 5672

    def reachable(self) -> bool:
        try:
            socket.create_connection((self.host, self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop_app(self) -> None:
        """The broker goes away (connections refused); the Erlang node stays, so it returns fast."""
        rabbitmqctl("stop_app")

    def start_app(self) -> None:
        rabbitmqctl("start_app")
        self.wait_ready()

    def stop(self) -> None:
        """The whole node stops, as in a crash or a host restart; what is durable stays on disk."""
        rabbitmqctl("stop")
        wait_until(lambda: not self.reachable(), timeout=60, message="RabbitMQ to stop")

    def start(self) -> None:
        subprocess.run(["rabbitmq-server", "-detached"], check=True, timeout=60, capture_output=True)
        self.wait_ready()

    def wait_ready(self) -> None:
        wait_until(self.reachable, timeout=120, interval=0.5, message="RabbitMQ to listen on 5672")
        rabbitmqctl("await_startup")

    def ensure_running(self) -> None:
        if self.reachable():
            return
        if rabbitmqctl("ping", check=False).returncode == 0:  # the node is up, its app stopped
            self.start_app()
        else:
            self.start()


def queue_depths(*, ready_only: bool = False) -> dict[str, int]:
    """Messages in each queue of this run's vhost, ready or held unacknowledged by a worker (an
    earlier test's countdown retry, say); `ready_only`: the ready ones alone."""
    vhost = urlparse(settings.CELERY_BROKER_URL).path.lstrip("/")
    column = "messages_ready" if ready_only else "messages"
    listing = rabbitmqctl("list_queues", "-p", vhost, "--no-table-headers", "--quiet", "name", column).stdout
    return {name: int(depth) for name, depth in (line.split() for line in listing.splitlines() if line.strip())}


def queue_depth(name: str, *, ready_only: bool = False) -> int:
    return queue_depths(ready_only=ready_only).get(name, 0)


def queues_purge() -> None:
    """Empty this run's queues, keeping them and the connections to them (deleting the vhost would
    drop the test process's own broker connection under it)."""
    from celery_app import app

    with app.connection_for_write() as connection:
        for name, depth in queue_depths().items():
            if depth:
                connection.default_channel.queue_purge(name)


@pytest.fixture
def rabbitmq():
    """Lets a test stop RabbitMQ; whatever happens in the test, RabbitMQ runs again after it."""
    broker = RabbitMQ()
    broker.ensure_running()
    try:
        yield broker
    finally:
        broker.ensure_running()
