"""The fake SMTP server of the suite (tests/fakes/smtp.py) as a process of the bench.

It answers each message after `--latency` seconds, like an ESP, and appends one line per accepted
message to `--out`: `<unix time received> <X-Notifier-Delivery-Id>`. The bench counts those lines
for delivered/s and joins them with the notifications' created_at for accepted→provider latency.
"""

import argparse
import signal
import threading

from bench.priority import niceness_session_wide
from tests.fakes.smtp import FakeSmtpServer


def main() -> None:
    niceness_session_wide()
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.005)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    with FakeSmtpServer(latency=args.latency, port=args.port) as server, open(args.out, "a") as out:
        print(f"listening on {server.url}", flush=True)
        while True:
            stopped = stopping.wait(0.25)
            for mail in server.take_received():
                out.write(f"{mail.received_at:.6f} {mail.header('X-Notifier-Delivery-Id')}\n")
            out.flush()
            if stopped:
                break


if __name__ == "__main__":
    main()
