"""The email backend's SMTP conversation alone: `python -m bench.smtp_client [--emails N] [--no-pipelining]
[--concurrency K] [--server aiosmtpd|lean]`.

Sends N emails through apps.channels.backends.email to an SMTP server run in a process of its own
(5 ms a message, one connection, logging off as in `make bench`; `--server`: the suite's fake SMTP
server, the default, or the bench's lean one, bench.smtp_sink), and prints the CPU per email of
the client (this process) and of the server, and the time per email.
`--no-pipelining`: the server does not offer PIPELINING, so the backend sends one command at a
time. `--concurrency K`: K sends at once, each on a send thread with a connection of its own, as a
worker sends a batch with the email channel's SEND_CONCURRENCY at K. docs/performance.md, "The
email rate, one change at a time", quotes it.
"""

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
import time
import uuid


def _serve(server: str, port: int, pipelining: bool, latency: float, pipe) -> None:
    logging.disable(logging.CRITICAL)
    with _server_running(server, port, pipelining, latency):
        pipe.send("up")
        pipe.recv()  # start
        started = time.process_time()
        pipe.recv()  # stop
        pipe.send(time.process_time() - started)


@contextlib.contextmanager
def _server_running(server: str, port: int, pipelining: bool, latency: float):
    if server == "aiosmtpd":
        from tests.fakes.smtp import FakeSmtpServer

        with FakeSmtpServer(port=port, latency=latency, pipelining=pipelining):
            yield
        return
    from bench.smtp_sink import LeanSmtpSink

    sink, loop, listening = LeanSmtpSink(port=port, latency=latency), asyncio.new_event_loop(), threading.Event()

    async def serve() -> None:
        await sink.listen()
        listening.set()

    threading.Thread(target=lambda: (loop.run_until_complete(serve()), loop.run_forever()), daemon=True).start()
    listening.wait()
    yield


def _answers_wait(answers, count: int) -> None:
    for _ in range(count):
        _, error = answers.by_key[answers.next_key()]
        if error is not None:
            raise error


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=600)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--no-pipelining", action="store_true")
    parser.add_argument("--server", choices=("lean", "aiosmtpd"), default="aiosmtpd",
                        help="which SMTP server: the bench's (bench.smtp_sink) or the suite's")
    parser.add_argument("--concurrency", type=int, default=1, help="sends at once, one connection each")
    args = parser.parse_args()
    if args.no_pipelining and args.server == "lean":
        parser.error("the bench's server always offers PIPELINING: --no-pipelining needs --server aiosmtpd")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifier.settings.test")
    import django

    django.setup()
    logging.disable(logging.CRITICAL)
    from apps.channels.backends.email import DjangoEmailBackend
    from apps.channels.base import ChannelMessage
    from apps.notifications.delivery.send_pool import BatchAnswers, send_pool
    from tests.support.processes import free_port

    port = free_port()
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(args.server, port, not args.no_pipelining,
                                                          args.latency_ms / 1000, theirs))
    server.start()
    ours.recv()
    backend = DjangoEmailBackend(url=f"smtp://127.0.0.1:{port}", from_email="Notifier <notifications@example.com>")
    content = {"subject": "Order 123 shipped", "text": "Hello Ada, order 123 is on its way."}
    headers = {"List-Unsubscribe": "<https://example.com/u/token>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    messages = [ChannelMessage(delivery_id=str(uuid.uuid4()), channel="email", content=content,
                               email=f"user{n}@example.com", headers=headers)
                for n in range(args.emails + args.concurrency)]
    # One connection per sending thread (this one, or the pool's), each opened outside the figures.
    if args.concurrency > 1:
        threads, answers = send_pool(args.concurrency), BatchAnswers()
        gate = threading.Barrier(args.concurrency)
        for key, message in enumerate(messages[:args.concurrency]):  # each thread opens its connection
            threads.start(answers, key, lambda m: (backend.send(m), gate.wait()), message)
        _answers_wait(answers, args.concurrency)
    else:
        backend.send(messages[0])
    ours.send("start")
    cpu, wall = time.process_time(), time.perf_counter()
    if args.concurrency > 1:
        answers = BatchAnswers()
        for key, message in enumerate(messages[args.concurrency:]):  # K taken off the queue at a time
            threads.start(answers, key, backend.send, message)
        _answers_wait(answers, args.emails)
    else:
        for message in messages[1:]:
            backend.send(message)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    ours.send("stop")
    server_cpu = ours.recv()
    server.join()
    per = 1000 / args.emails
    print(f"{args.server}, pipelining={not args.no_pipelining}, concurrency={args.concurrency}: client CPU {cpu * per:.3f} ms, "
          f"server CPU {server_cpu * per:.3f} ms, time {wall * per:.2f} ms per email ({args.emails} emails)")


if __name__ == "__main__":
    main()
