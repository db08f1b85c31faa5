"""A hostile template cannot take a process down: previewed by a real web process, sent by a real worker.

Issue 8: ~1 KB of template, a string doubled by 32 nested {% with a=a|add:a %}. Previewed, the web
process grew to 23.7 GB until the kernel killed it; sent, it took a worker child down on each
attempt. Each test measures the processes' peak resident memory (VmHWM) and that they live on.
"""

import threading
import time

import pytest
import requests

from tests.e2e.conftest import notification_when_final
from tests.support.memory import cpu_seconds, peak_rss_bytes, peak_rss_reset, process_tree, render_processes, rss_bytes
from tests.support.processes import web_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MB = 1024 * 1024
GROWTH_BOUND = 200 * MB
NESTED_WITH = '{% with a="xxxxxxxx" %}' + "{% with a=a|add:a %}" * 32 + "{{ a }}" + "{% endwith %}" * 33
HOSTILE = {"channels": {"email": {"subject": "Hi", "text": NESTED_WITH}}}
FRIENDLY = {"channels": {"email": {"subject": "Hi {{ name }}", "text": "Hello {{ name }}"}}}


@pytest.fixture(scope="module")
def own_web(e2e_env, process_logs):
    """A web process of this module's own, so its memory is this module's to measure."""
    server, base_url = web_server(e2e_env, process_logs)
    with server:
        yield server.process.pid, base_url


@pytest.fixture
def client(own_web, api_key):
    pid, base_url = own_web
    session = requests.Session()
    session.headers["Authorization"] = f"Api-Key {api_key.raw_key}"
    yield pid, lambda method, path, **kwargs: session.request(method, base_url + path, timeout=60, **kwargs)
    session.close()


def test_previewing_the_nested_with_template_is_a_422_and_the_web_process_lives_on(client):
    pid, call = client
    assert call("PUT", "/api/v1/templates/bomb", json=HOSTILE).status_code == 201
    before = rss_bytes(pid)
    peak_rss_reset(pid)

    response = call("POST", "/api/v1/templates/bomb/preview", json={"data": {}})

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "template_render_error"
    assert "add would build a value larger than" in response.json()["error"]["details"]["channels.email.text"]
    assert peak_rss_bytes(pid) - before < GROWTH_BOUND
    assert call("GET", "/health/live").status_code == 200
    call("PUT", "/api/v1/templates/hello", json=FRIENDLY)
    assert call("POST", "/api/v1/templates/hello/preview", json={"data": {"name": "Ada"}}).json()["channels"] == {
        "email": {"subject": "Hi Ada", "text": "Hello Ada"}}


def test_previewing_truncatechars_html_over_900_kb_takes_seconds_of_cpu_not_ten(client):
    pid, call = client
    call("PUT", "/api/v1/templates/teaser", json={"channels": {"email": {"subject": "Hi",
                                                                         "text": "{{ s|truncatechars_html:100 }}"}}})
    call("POST", "/api/v1/templates/teaser/preview", json={"data": {"s": "<p>"}})  # a render process is up
    [renderer] = render_processes(pid)
    cpu_before, started = cpu_seconds(renderer), time.monotonic()

    response = call("POST", "/api/v1/templates/teaser/preview", json={"data": {"s": "<p>" * 300_000}})

    # Bounded: either rendered (within the cap) or refused at the render's deadline.
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert "longer than 2 seconds" in response.json()["error"]["details"]["channels.email.text"]
    assert cpu_seconds(renderer) - cpu_before < 5  # Django's own filter took 10 to 24 s
    assert time.monotonic() - started < 2 + 2 + 10  # the cap, the kill's grace, a loaded machine
    assert call("GET", "/health/live").status_code == 200


def test_many_hostile_previews_at_once_leave_the_web_process_small_with_few_render_processes(client):
    pid, call = client
    call("PUT", "/api/v1/templates/bomb", json=HOSTILE)
    before = rss_bytes(pid)
    peak_rss_reset(pid)
    statuses, most_render_processes = [], 0

    def preview():
        statuses.append(call("POST", "/api/v1/templates/bomb/preview", json={"data": {}}).status_code)

    threads = [threading.Thread(target=preview) for _ in range(16)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        most_render_processes = max(most_render_processes, len(render_processes(pid)))
        threads[0].join(0.02)

    assert statuses == [422] * 16
    assert most_render_processes <= 2  # NOTIFIER_TEMPLATE_PREVIEW_PROCESSES, whatever the clients
    assert peak_rss_bytes(pid) - before < GROWTH_BOUND
    assert call("GET", "/health/live").status_code == 200


@pytest.mark.timeout(150)  # two sends of up to 60 s each
def test_sending_the_nested_with_template_fails_with_template_error_and_the_worker_lives_on(http, worker, smtp):
    http.put("/api/v1/users/ada", json={"email": "ada@example.com", "name": "Ada"})
    http.put("/api/v1/templates/bomb", json=HOSTILE)
    http.put("/api/v1/templates/hello", json=FRIENDLY)
    pids = process_tree(worker.process.pid)
    before = {p: rss_bytes(p) for p in pids}
    for p in pids:
        peak_rss_reset(p)

    bomb = http.post("/api/v1/notifications", json={"to": "ada", "template": "bomb"}).json()
    notification = notification_when_final(http, bomb["id"], timeout=60)

    [delivery] = notification["deliveries"]
    assert (notification["status"], delivery["status"]) == ("failed", "failed")
    assert delivery["last_error"]["code"] == "template_error"
    assert "add would build a value larger than" in delivery["last_error"]["message"]
    assert process_tree(worker.process.pid) == pids  # no child was lost and replaced
    assert max(peak_rss_bytes(p) - before[p] for p in pids) < GROWTH_BOUND

    hello = http.post("/api/v1/notifications", json={"to": "ada", "template": "hello", "data": {"name": "Ada"}}).json()
    assert notification_when_final(http, hello["id"], timeout=60)["status"] == "sent"
    assert [m["Subject"] for m in smtp.received_for("ada@example.com")] == ["Hi Ada"]
