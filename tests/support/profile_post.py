"""Where one POST /api/v1/notifications spends its time, measured in-process (no network, no load).

    python -m tests.support.profile_post --api-key KEY --requests 200

Run with the environment of tests/support/webbench.py (production settings, a migrated database,
a RabbitMQ vhost; `--profile` there does it). Sends the same POST through Django's ASGI handler
(as uvicorn does) and through its WSGI handler (no thread hop), counting database round trips and
their time, and the time spent publishing to RabbitMQ (including the publisher confirm).
"""

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import time

import django

django.setup()

from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from tests.support.asgi import asgi_request  # noqa: E402
from tests.support.loadgen import TEMPLATE  # noqa: E402

BODY = {"to": "loadgen-0", "template": "loadgen", "data": {"n": 1}}


class _QueryTimer:
    def __init__(self):
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - began
            self.count += 1


def _wsgi_post(client: Client, api_key: str) -> int:
    response = client.post("/api/v1/notifications", data=json.dumps(BODY), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    return response.status_code


async def _asgi_post(app: ASGIHandler, api_key: str) -> int:
    return await asgi_request(app, method="POST", path="/api/v1/notifications", body=json.dumps(BODY).encode(),
                              headers=[(b"content-type", b"application/json"),
                                       (b"authorization", f"Api-Key {api_key}".encode())])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    client = Client(SERVER_NAME="127.0.0.1")
    app = ASGIHandler()
    auth = {"HTTP_AUTHORIZATION": f"Api-Key {args.api_key}"}
    client.put("/api/v1/templates/loadgen", data=json.dumps(TEMPLATE), content_type="application/json", **auth)
    client.put("/api/v1/users/loadgen-0", data=json.dumps({"email": "loadgen-0@example.com"}),
               content_type="application/json", **auth)
    for _ in range(20):  # warm up: imports, template cache, pool, broker connection
        assert _wsgi_post(client, args.api_key) == 202

    timer = _QueryTimer()
    wsgi = []
    with connection.execute_wrapper(timer):
        for _ in range(args.requests):
            began = time.perf_counter()
            assert _wsgi_post(client, args.api_key) == 202
            wsgi.append(time.perf_counter() - began)

    async def asgi_run() -> list[float]:
        durations = []
        for _ in range(args.requests):
            began = time.perf_counter()
            assert await _asgi_post(app, args.api_key) == 202
            durations.append(time.perf_counter() - began)
        return durations

    asgi = asyncio.run(asgi_run())

    # Shares of the time, under the profiler (which slows everything, so shares, not milliseconds).
    profiler = cProfile.Profile()
    for _ in range(args.requests):
        profiler.enable()
        _wsgi_post(client, args.api_key)
        profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(row[2] for row in stats.stats.values())

    def share(module_part: str, function: str) -> float:
        cumulative = sum(row[3] for (path, _, name), row in stats.stats.items() if module_part in path and name == function)
        return round(100 * cumulative / total, 1)

    n = args.requests
    report = {
        "requests": n,
        "wsgi_ms_p50": round(1000 * statistics.median(wsgi), 2),
        "asgi_ms_p50": round(1000 * statistics.median(asgi), 2),
        "queries_per_request": round(timer.count / n, 1),
        "db_ms_per_request": round(1000 * timer.seconds / n, 2),
        "profile_share_percent": {
            "notifications_create": share("apps/notifications/intake/services.py", "notifications_create"),
            "database_waits": share("psycopg/connection.py", "wait"),
            "publish": share("kombu/messaging.py", "_publish"),
            "publish_confirm": share("amqp/channel.py", "basic_publish_confirm"),
            "api_key_authentication": share("apps/projects/authentication.py", "authenticate"),
            "response_rendering": share("rest_framework/response.py", "rendered_content"),
        },
    }
    print(json.dumps(report))
    stats.sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
