"""Clients of the real web processes, as the end-to-end tests use them: an API session on a base
URL, and a browser's EventSource reading the inbox stream in a thread."""

import json
import queue
import socket
import threading
import time
from dataclasses import dataclass

import requests

IN_APP_TEMPLATE = {"channels": {"in_app": {"title": "{{ title }}", "body": "Hello {{ name }}", "url": "/n/{{ n }}"}}}


class Api(requests.Session):
    """A requests session for one web process: relative URLs allowed, a timeout on every request,
    authenticated with an API key when one is given."""

    def __init__(self, base_url: str, api_key: str = ""):
        super().__init__()
        self.base_url = base_url
        if api_key:
            self.headers["Authorization"] = f"Api-Key {api_key}"

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", 15)
        return super().request(method, self.base_url + url if url.startswith("/") else url, *args, **kwargs)


def user_with_token(api: Api, external_id: str) -> str:
    assert api.put(f"/api/v1/users/{external_id}", json={"name": external_id.title()}).status_code in (200, 201)
    response = api.post(f"/api/v1/users/{external_id}/token")
    assert response.status_code == 200, response.text
    return response.json()["token"]


def notify(api: Api, external_id: str, title: str, n: int = 0) -> float:
    """POST a notification; return when it was posted (time.time())."""
    posted_at = time.time()
    response = api.post("/api/v1/notifications", json={"to": external_id, "template": "news",
                                                       "data": {"title": title, "name": external_id, "n": n}})
    assert response.status_code == 202, response.text
    return posted_at


# --- A browser's EventSource, in a thread ---------------------------------------------------------

@dataclass(frozen=True)
class Event:
    id: str
    event: str
    data: dict
    received_at: float  # time.time()


class EventStream:
    """Reads text/event-stream like EventSource: events, comments (heartbeats) and the retry hint."""

    def __init__(self, url: str, *, token: str = "", via_query: bool = False, last_event_id: str = ""):
        headers = {"Accept": "text/event-stream"}
        params = {}
        if via_query:
            params["token"] = token
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.response = requests.get(url, headers=headers, params=params, stream=True, timeout=(5, None))
        self.status_code = self.response.status_code
        self.retry_ms: int | None = None
        self.comments: list[str] = []
        self._events: queue.Queue[Event] = queue.Queue()
        self._connected = threading.Event()
        self._ended = threading.Event()
        if self.status_code == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            for raw in self.response.iter_lines(chunk_size=1024):
                line = raw.decode()
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                elif line:
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value
                else:
                    if "retry" in fields:
                        self.retry_ms = int(fields.pop("retry"))
                        self._connected.set()
                    if "data" in fields:
                        self._events.put(Event(fields.get("id", ""), fields.get("event", "message"),
                                               json.loads(fields["data"]), time.time()))
                    fields = {}
        except (requests.RequestException, AttributeError, ValueError):
            pass  # closed by the test
        finally:
            self._ended.set()

    def wait_connected(self, timeout: float = 10) -> None:
        assert self._connected.wait(timeout), "the stream sent no retry hint"

    def wait_ended(self, timeout: float) -> bool:
        """Whether the server ended the stream within timeout."""
        return self._ended.wait(timeout)

    def next_event(self, timeout: float = 15) -> Event:
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout}s") from None

    def pending_events(self) -> list[Event]:
        events = []
        while not self._events.empty():
            events.append(self._events.get_nowait())
        return events

    def close(self) -> None:
        """Hang up, as a browser does when the tab closes."""
        # Shut the socket down first: the reader thread blocks in recv() until the next byte,
        # and closing the response alone would wait for it (the next heartbeat).
        sock = getattr(self.response.raw.connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the server
        self.response.close()
