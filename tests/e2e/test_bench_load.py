"""The bench's load generator, against a stand-in server: the paced mode offers the rate asked for,
and counts latency from when a request was due, so a slow server cannot hide its stall by holding
back the requests that would have waited for it."""

import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.load import LoadSpec, _start_together, run_load

pytestmark = pytest.mark.e2e


@contextmanager
def _server(answer_after_s: float):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the bench's clients use it

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(answer_after_s)
            self.send_response(202)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()


def _load(server, *, clients: int, rate: float, seconds: float) -> dict:
    spec = LoadSpec(base_url=f"http://127.0.0.1:{server.server_address[1]}", api_key="k", path="/", kind="single",
                    clients=clients, seconds=seconds, users=10, template="t", niceness=0, rate=rate)
    return run_load(spec, processes=1)


def test_the_paced_clients_offer_the_rate_asked_for_not_what_the_server_allows():
    with _server(answer_after_s=0.0) as server:
        paced = _load(server, clients=4, rate=10, seconds=2)
        closed = _load(server, clients=4, rate=0, seconds=2)
    assert 15 <= paced["accepted"] <= 22, paced["accepted"]  # 10/s for 2 s
    assert closed["accepted"] > 3 * paced["accepted"], closed["accepted"]


def test_a_paced_client_behind_its_schedule_counts_the_wait_in_the_latency():
    # Requests due every 100 ms, answered after 300 ms: each goes out later than it was due, and
    # the latency grows by that lateness (300, 500, 700 ms, ...). The closed loop sees 300 ms each.
    with _server(answer_after_s=0.3) as server:
        paced = _load(server, clients=1, rate=10, seconds=1.5)
        closed = _load(server, clients=1, rate=0, seconds=1.5)
    assert max(closed["latencies_ms"]) < 450, closed["latencies_ms"]
    assert max(paced["latencies_ms"]) > 600, paced["latencies_ms"]
    assert paced["latencies_ms"] == sorted(paced["latencies_ms"]), paced["latencies_ms"]



# A stand-in for a load process: ready after `delay` seconds (its imports), then it reports when it
# would start its clients: at the start time it is sent, or at once if that has passed.
_STAND_IN = """
import sys, time
time.sleep(float(sys.argv[1]))
print("ready", flush=True)
start_at = float(sys.stdin.readline())
print(max(time.time(), start_at))
"""


def test_the_load_processes_start_their_clients_at_one_moment_however_slowly_each_loads():
    # The rates are counted from the first process's start to the last one's end: a process starting
    # late lengthens that window without adding requests.
    children = [subprocess.Popen([sys.executable, "-c", _STAND_IN, str(delay)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True) for delay in (0.0, 0.5)]
    _start_together(children)
    starts = [float(child.communicate(timeout=10)[0]) for child in children]
    assert max(starts) - min(starts) < 0.01, starts


def test_two_load_processes_offer_the_rate_together():
    with _server(answer_after_s=0.0) as server:
        spec = LoadSpec(base_url=f"http://127.0.0.1:{server.server_address[1]}", api_key="k", path="/",
                        kind="single", clients=4, seconds=1, users=10, template="t", niceness=0, rate=20)
        result = run_load(spec, processes=2)
    assert 17 <= result["accepted"] <= 22, result["accepted"]  # 20/s for 1 s, over both processes
    assert result["finished_at"] - result["started_at"] < 1.3
