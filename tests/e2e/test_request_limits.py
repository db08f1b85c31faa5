"""Request bodies against a real web process (the Procfile's `web` line): an oversized body is
refused with the 413 envelope before it is read, authenticated or not, the process stays alive with
its memory bounded, and a client that sends its whole body before reading still reads the 413."""

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import requests

from tests.projects.factories import ApiKeyFactory
from tests.support.processes import process_env, test_database_url, wait_until, web_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LIMIT = 1024 * 1024  # NOTIFIER_MAX_REQUEST_BYTES' default
BULK_LIMIT = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def edge(django_db_blocker, tmp_path_factory):
    """A web process of its own, so its memory is this test's alone to measure."""
    with django_db_blocker.unblock():
        env = process_env(DATABASE_URL=test_database_url())
    server, base_url = web_server(env, tmp_path_factory.mktemp("edge"), processes=1)
    with server:
        yield server, base_url


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def raw_request(base_url: str, head: str, timeout: float = 5) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.sendall(head.encode())
    return sock


def read_response(sock: socket.socket, data: bytes = b"") -> tuple[int, dict]:
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _content_length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _content_length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def assert_alive(base_url: str) -> None:
    assert requests.get(f"{base_url}/health/live", timeout=10).json() == {"status": "ok"}


def test_a_huge_content_length_without_credentials_is_refused_before_the_body(edge):
    _, base_url = edge
    started = time.monotonic()
    sock = raw_request(base_url, "POST /api/v1/notifications HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 "Content-Type: application/json\r\nContent-Length: 300000000\r\n\r\n")
    with sock:
        status, body = read_response(sock)  # not one byte of the body was sent
    elapsed = time.monotonic() - started

    assert (status, body["error"]["code"]) == (413, "request_too_large")
    assert elapsed < 1.0, f"the 413 took {elapsed:.2f}s"
    assert_alive(base_url)


def test_a_chunked_body_growing_past_the_limit_is_cut_off_and_memory_stays_bounded(edge):
    server, base_url = edge
    rss_before = vm_rss_kib(server.process.pid)
    sock = raw_request(base_url, "PUT /api/v1/templates/big HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 65536
    sent = 0
    with sock:
        sock.settimeout(0.05)
        answered = b""
        # Up to 64 MiB (64 times the limit), stopping as soon as the server answers.
        while sent < 64 * LIMIT and not answered:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                answered = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.settimeout(5)
        status, body = read_response(sock, answered)
    rss_after = vm_rss_kib(server.process.pid)

    assert (status, body["error"]["code"]) == (413, "request_too_large")
    # Refused within a few of the server's reads of the limit, not after the whole stream.
    assert sent < 4 * LIMIT, f"{sent} bytes were taken before the 413"
    assert rss_after - rss_before < 32 * 1024, f"VmRSS grew by {rss_after - rss_before} KiB"
    assert_alive(base_url)


def test_a_3_mb_json_body_with_a_valid_key_is_the_413_envelope(edge):
    _, base_url = edge
    api_key = ApiKeyFactory()
    body = json.dumps({"to": "ada", "template": "welcome", "data": {"blob": "x" * (3 * 1024 * 1024)}})

    response = requests.post(f"{base_url}/api/v1/notifications", data=body, timeout=30,
                             headers={"Authorization": f"Api-Key {api_key.raw_key}", "Content-Type": "application/json"})

    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "request_too_large"
    assert_alive(base_url)


def test_clients_that_send_a_3_mb_body_before_reading_read_the_413_envelope_not_a_broken_pipe(edge):
    """requests and urllib send the whole body, then read: the answer must still be there for them."""
    _, base_url = edge
    url = f"{base_url}/api/v1/notifications"
    for _ in range(5):  # a close while the client still sends loses the race often, not always
        response = requests.post(url, data=b"x" * 3_000_000, timeout=30)
        assert (response.status_code, response.json()["error"]["code"]) == (413, "request_too_large")

        request = urllib.request.Request(url, data=b"x" * 3_000_000, method="POST",
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert (refused.value.code, json.loads(refused.value.read())["error"]["code"]) == (413, "request_too_large")

        # Chunked (no Content-Length): refused when the limit passes, then drained the same way.
        chunked = requests.post(url, data=iter([b"x" * 65536] * 46), timeout=30)
        assert (chunked.status_code, chunked.json()["error"]["code"]) == (413, "request_too_large")
    assert_alive(base_url)


def test_the_bulk_endpoints_take_more_than_the_default_limit_but_not_without_bound(edge):
    _, base_url = edge
    api_key = ApiKeyFactory()
    headers = {"Authorization": f"Api-Key {api_key.raw_key}", "Content-Type": "application/json"}
    users = {"users": [{"external_id": f"u{i}", "name": "x" * 2000} for i in range(1000)]}  # ~2 MB

    response = requests.put(f"{base_url}/api/v1/users", data=json.dumps(users), headers=headers, timeout=60)
    assert response.status_code != 413, response.text[:300]  # past the edge (the endpoint decides the rest)

    too_big = json.dumps({"users": [{"external_id": "u", "name": "x" * (BULK_LIMIT + 1)}]})
    response = requests.put(f"{base_url}/api/v1/users", data=too_big, headers=headers, timeout=60)
    assert (response.status_code, response.json()["error"]["code"]) == (413, "request_too_large")
    wait_until(lambda: requests.get(f"{base_url}/health/live", timeout=5).ok, timeout=10, message="web alive")


@pytest.mark.parametrize(("method", "path", "headers", "status"), [
    ("GET", "/api/v1/project", {"Host": "evil.example"}, 400),  # DisallowedHost
    ("POST", "/api/v1/no-such-thing", {}, 404),  # not a CSRF 403: the catch-all is csrf_exempt
    ("GET", "/api/v1/%C0%AF", {}, 404),  # not UTF-8
    ("PUT", "/api/v1/templates/%C8%BA", {"Content-Type": "application/json"}, 404),
])
def test_django_s_own_refusals_are_envelopes_through_the_asgi_stack(edge, method, path, headers, status):
    _, base_url = edge
    response = requests.request(method, base_url + path, headers=headers, data=b"{}", timeout=10)
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"] == "application/json"
    assert set(response.json()["error"]) == {"code", "message", "details"}
