"""`make run` as a new developer uses it: embedded SQLite and filesystem broker, no servers.

The test runs the real command, executes the `curl` line it prints, and waits for the
notification to reach `sent` and the mail to reach an SMTP server.
"""

import json
import os
import re
import signal
import subprocess
import time
import warnings

import pytest
import requests

from tests.support.processes import REPO_ROOT, free_port, process_env, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def make_run(tmp_path, smtp):
    port = free_port()
    env = process_env(PORT=port, NOTIFIER_DATA_DIR=tmp_path, EMAIL_URL=smtp.url,
                      DJANGO_SETTINGS_MODULE="notifier.settings.dev", NOTIFIER_SWEEP_INTERVAL_SECONDS=2)
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "NOTIFIER_TEST_RUN"):
        env.pop(name, None)  # the embedded defaults, exactly as on a fresh machine
    output = tmp_path / "make-run.log"
    with output.open("wb") as log:
        process = subprocess.Popen(["make", "run"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _live(base_url) or process.poll() is not None, timeout=120, message="make run to serve")
        assert process.poll() is None, output.read_text()
        yield base_url, output, tmp_path
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"make run did not stop on Ctrl-C:\n{output.read_text()[-3000:]}")


def _live(base_url: str) -> bool:
    try:
        return requests.get(f"{base_url}/health/live", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


@pytest.mark.timeout(300)  # `make run` migrates and seeds before it serves (up to 120 s)
def test_make_run_serves_and_its_curl_line_sends_a_notification(make_run, smtp):
    base_url, output, data_dir = make_run
    text = output.read_text()
    [curl_line] = [line for line in text.splitlines() if line.startswith("curl ")]
    assert f"{base_url}/admin/" in text and "admin / admin" in text
    assert (data_dir / "notifier.sqlite3").exists()

    result = subprocess.run(["bash", "-c", curl_line + " -w '\\n%{http_code}'"], capture_output=True, text=True, timeout=30)
    body, status = result.stdout.rsplit("\n", 1)
    assert status == "202", result.stdout + result.stderr
    notification_id = json.loads(body)["id"]

    api_key = curl_line.split("Api-Key ")[1].split("'")[0]
    def sent():
        response = requests.get(f"{base_url}/api/v1/notifications/{notification_id}",
                                headers={"Authorization": f"Api-Key {api_key}"}, timeout=5)
        return response.json()["status"] == "sent"

    wait_until(sent, timeout=60, message=f"the notification to be sent\n{output.read_text()[-3000:]}")
    [message] = smtp.received_for("demo-user@example.com")
    assert message["Subject"] == "Welcome, Ada!"

    # The inbox widget's demo: the page make run names embeds it for the demo user, and its button
    # puts a message in their inbox (delivered by make run's worker, over the embedded broker).
    assert f"Inbox widget demo: {base_url}/inbox/demo/" in text
    browser = requests.Session()
    page = browser.get(f"{base_url}/inbox/demo/", timeout=10)
    assert page.status_code == 200 and '<script src="/inbox/widget.js"' in page.text
    token = re.search(r'<notifier-inbox api-base="[^"]+" token="([^"]+)"', page.text)[1]
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
    assert browser.post(f"{base_url}/inbox/demo/", data={"csrfmiddlewaretoken": csrf}, timeout=10).status_code == 200

    connection_errors: list[str] = []

    def unread() -> int | None:
        # Once in CI one of these reads was reset by the server, and the failure showed neither
        # which read nor make run's log: a connection error is now kept and reported with the log
        # (a warning when the message still arrives), not raised before the log can be read.
        try:
            return requests.get(f"{base_url}/api/v1/inbox/unread-count", headers={"Authorization": f"Bearer {token}"},
                                timeout=5).json()["count"]
        except requests.ConnectionError as error:
            connection_errors.append(f"{time.strftime('%H:%M:%S')} {error!r}")
            return None

    try:
        wait_until(lambda: unread() == 1, timeout=60, message="the demo's message")
    except TimeoutError as error:
        raise AssertionError(f"{error}; connection errors: {connection_errors}\n{output.read_text()[-3000:]}") from None
    if connection_errors:
        warnings.warn(f"make run reset reads of the unread count: {connection_errors}\n{output.read_text()[-3000:]}",
                      stacklevel=1)
