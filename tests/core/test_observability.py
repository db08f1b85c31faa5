"""Log lines and /metrics as the web process makes them: masking, JSON, the correlation id,
the multiprocess folder's cleaning, and a scrape that survives a broker that does not answer."""

import json
import logging
import os
import subprocess
import sys
import time

import pytest
from rest_framework.test import APIClient

from apps.core.correlation import correlation_bound
from apps.core.logs import CorrelationIdFilter, JsonFormatter, TextFormatter, mask
from apps.core.metrics_folder import metrics_folder_clean
from tests.fakes.silent_tcp import SilentTcpServer
from tests.support.processes import REPO_ROOT, process_env


@pytest.mark.parametrize(("raw", "masked"), [
    ("to ada@example.com", "to a***@example.com"),
    ("<grace.hopper@mail.example.co.uk> refused", "<g***@mail.example.co.uk> refused"),
    ("sms to +15551234567 failed", "sms to +1***67 failed"),
    # Numbers as people write them, and short ones: masked whole, whatever the grouping or length.
    ("sms to +1 415 555 0100 failed", "sms to +1***00 failed"),
    ("call +33 6 12 34 56 78.", "call +33***78."),
    ("+1-415-555-0100 and +44 20 7946 0958", "+1***00 and +44***58"),
    ("Niue: +6834002", "Niue: +683***02"),
    # Unicode addresses, and local parts with an apostrophe or a plus: the first letter stays, no more.
    ("to ada@bücher.example", "to a***@bücher.example"),
    ("to o'brien@example.com", "to o***@example.com"),
    ("to=ada+news@xn--bcher-kva.example", "to=a***@xn--bcher-kva.example"),
    ("['jürgen@example.de']", "['j***@example.de']"),
    ("Authorization: Api-Key ntf_AbC123xyz", "Authorization: Api-Key ***"),
    ("key ntf_AbC123xyz in a message", "key ntf_*** in a message"),
    ("Authorization: Bearer eyJhbGciOi.abc", "Authorization: Bearer ***"),
    ("amqp://notifier:hunter2@rabbit:5672/prod", "amqp://notifier:***@rabbit:5672/prod"),
    ('{"webhook_secret": "whsec-123", "n": 1}', '{"webhook_secret": "***", "n": 1}'),
    ("auth_token=abc123&x=1", "auth_token=***&x=1"),
    ("GET /preferences/eyJwIjoxfQ:1tLx:q2Vt9x 200", "GET /preferences/*** 200"),
    ("POST /unsubscribe/WzEsMiwibSJd:q2Vt 200", "POST /unsubscribe/*** 200"),
    # Credentials in capitals: what tells a field that may hold one from one that cannot ignores case.
    ("AUTHORIZATION: BEARER eyJhbGciOi.abc", "AUTHORIZATION: BEARER ***"),
    ("DB_PASSWORD=hunter2 set", "DB_PASSWORD=*** set"),
])
def test_addresses_and_credentials_are_masked(raw, masked):
    assert mask(raw) == masked


@pytest.mark.parametrize("line", [
    "delivery 3f0c1234-5678-4234-9234-123456789012 at 2026-11-30T10:00:00+00:00 took 1700000000000 us",
    "retry in 30 s (+12 %), 1000/1000 sent, version 2.0+1",
])
def test_ids_times_and_counts_are_left_alone(line):
    assert mask(line) == line


def record(message, *args, exc_info=None, **extra):
    log = logging.LogRecord("apps.test", logging.WARNING, __file__, 1, message, args, exc_info)
    for key, value in extra.items():
        setattr(log, key, value)
    CorrelationIdFilter().filter(log)
    return log


def test_a_json_line_carries_the_correlation_id_and_masks_the_exception_text_too():
    try:
        raise ValueError("could not reach bob@example.com with Bearer s3cr3t")
    except ValueError:
        exc_info = sys.exc_info()
    with correlation_bound("req-7"):
        log = record("send to %s failed", "+15551234567", exc_info=exc_info, delivery_id="d-1")

    line = json.loads(JsonFormatter().format(log))

    assert line["correlation_id"] == "req-7" and line["level"] == "WARNING" and line["delivery_id"] == "d-1"
    assert line["message"] == "send to +1***67 failed"
    assert "b***@example.com" in line["exc_info"] and "bob@example.com" not in line["exc_info"]
    assert "s3cr3t" not in line["exc_info"]


def test_a_text_line_is_readable_and_masked():
    with correlation_bound("req-8"):
        log = record("send to %s failed", "ada@example.com")
    text = TextFormatter("%(levelname)s %(message)s").format(log)
    assert text == "WARNING send to a***@example.com failed [req-8]"


def test_a_sane_request_id_is_returned_and_an_insane_one_replaced(db):
    client = APIClient()
    assert client.get("/health/live", HTTP_X_REQUEST_ID="abc-123:x.y_z")["X-Request-ID"] == "abc-123:x.y_z"
    made = client.get("/health/live", HTTP_X_REQUEST_ID="no spaces; or <tags>")["X-Request-ID"]
    assert made != "no spaces; or <tags>" and len(made) == 32
    assert len(client.get("/health/live", HTTP_X_REQUEST_ID="x" * 129)["X-Request-ID"]) == 32


def test_the_metrics_folder_keeps_a_running_hosts_counters_and_clears_a_finished_run(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        for name in (f"counter_{dead_pid}.db", f"histogram_{dead_pid}.db", f"gauge_livesum_{dead_pid}.db",
                     f"counter_{live.pid}.db"):
            (tmp_path / name).write_bytes(b"")
        # Another process of this run is alive: the dead one's counts stay, its live gauge goes.
        assert metrics_folder_clean(folder=str(tmp_path)) == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [f"counter_{dead_pid}.db", f"histogram_{dead_pid}.db", f"counter_{live.pid}.db"])
    finally:
        live.kill()
        live.wait()
    # Nobody of that run is left: a new run starts from an empty folder.
    assert metrics_folder_clean(folder=str(tmp_path)) == 3
    assert list(tmp_path.iterdir()) == []
    assert os.getpid() != dead_pid


def test_a_broker_that_does_not_answer_costs_the_scrape_its_timeout_not_the_scrape(db, settings):
    settings.NOTIFIER_METRICS_BROKER_TIMEOUT_SECONDS = 0.5
    with SilentTcpServer() as silent:
        settings.CELERY_BROKER_URL = f"amqp://guest:guest@127.0.0.1:{silent.port}//"
        started = time.monotonic()
        response = APIClient().get("/metrics")
        took = time.monotonic() - started
    body = response.content.decode()
    assert response.status_code == 200
    assert "notifier_broker_up 0.0" in body
    assert "notifier_queue_messages{" not in body
    assert 'notifier_dead_letters{channel="email"} 0.0' in body
    assert took < 10  # not a timing target: a hang would be the 30 s test timeout, this names it


def depth_line(body: str, queue: str) -> str:
    [line] = [line for line in body.splitlines() if line.startswith(f'notifier_queue_messages{{queue="{queue}"}}')]
    return line


def test_scrapes_in_quick_succession_read_the_database_and_the_broker_once(db, settings, rabbitmq_vhost,
                                                                          django_assert_num_queries):
    from celery_app import app

    settings.NOTIFIER_METRICS_CACHE_SECONDS = 1.0
    [queue] = [q for q in settings.CELERY_TASK_QUEUES if q.name == "notifications.maintenance"]
    with app.connection_for_write() as connection:
        queue(connection.default_channel).declare()
        queue(connection.default_channel).purge()
        try:
            first = APIClient().get("/metrics").content.decode()
            with app.producer_or_acquire() as producer:
                producer.publish({"test": "metrics cache"}, exchange=queue.exchange, routing_key=queue.routing_key)
            with django_assert_num_queries(0):  # the dead letters were counted by the first scrape
                second = APIClient().get("/metrics").content.decode()
            # The broker was not asked again either: the depth is the one read before the publish.
            assert depth_line(second, queue.name) == depth_line(first, queue.name) == (
                f'notifier_queue_messages{{queue="{queue.name}"}} 0.0')
            time.sleep(1.1)
            third = APIClient().get("/metrics").content.decode()
            assert depth_line(third, queue.name) == f'notifier_queue_messages{{queue="{queue.name}"}} 1.0'
        finally:
            queue(connection.default_channel).purge()


def test_a_process_writes_to_the_metrics_folder_even_when_prometheus_client_was_imported_first(tmp_path):
    # What happens in Celery's worker and beat: the command line imports Flower's plugin, and so
    # prometheus_client, before our app is loaded; the pool children must still write to the folder.
    code = (
        "import prometheus_client\n"
        "from apps.core.metrics_folder import metrics_folder_use\n"
        "folder = metrics_folder_use()\n"
        "prometheus_client.Counter('notifier_probe_total', 'probe').inc()\n"
        "print(folder)\n"
    )
    env = process_env(DJANGO_SETTINGS_MODULE="notifier.settings.dev", NOTIFIER_DATA_DIR=tmp_path)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "metrics")  # the documented default, <data dir>/metrics
    assert [path.name.split("_")[0] for path in (tmp_path / "metrics").glob("*.db")] == ["counter"]


def test_the_request_line_carries_every_field_operators_read(db, caplog):
    # The records skip what no line writes (the caller's frame, thread and process names):
    # the JSON line still has all of its fields, and only those.
    with caplog.at_level("INFO", logger="notifier.request"):
        APIClient().get("/health/live", HTTP_X_REQUEST_ID="req-9")
    [log] = [r for r in caplog.records if r.name == "notifier.request"]

    line = json.loads(JsonFormatter().format(log))

    assert set(line) == {"timestamp", "level", "logger", "message", "correlation_id", "pid", "method", "path",
                         "status", "duration_ms"}
    assert (line["message"], line["correlation_id"], line["pid"]) == ("GET /health/live 200", "req-9", os.getpid())
    assert (line["method"], line["path"], line["status"]) == ("GET", "/health/live", 200)
