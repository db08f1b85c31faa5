"""The email provider of the bench: an SMTP server in a process of its own.

It answers each message after `--latency` seconds, like an ESP, and appends one line per accepted
message to `--out`: `<unix time accepted> <X-Notifier-Delivery-Id>`. The bench counts those lines
for delivered/s and joins them with the notifications' created_at for accepted→provider latency.

`--server lean` (the default) is `LeanSmtpSink` below; `--server aiosmtpd` is the suite's fake
SMTP server (tests/fakes/smtp.py). Both speak the same SMTP to our backend: EHLO with PIPELINING,
any number of transactions a connection, RSET, NOOP, QUIT. The lean one exists because the sink
stands for a provider on another machine, whose CPU is not ours, yet here it shares our two cores:
aiosmtpd, reading a stream line by line, took a fifth of the whole pipeline's CPU; this one takes
a fraction of that. It checks nothing a real server would refuse and scripts no failures: tests
that need those use the suite's server. docs/performance.md, "The bench's SMTP server", measures
both.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import time
from collections import deque

from bench.priority import niceness_session_wide

# Our backend writes the header with this spelling; a name is case-insensitive, so the search is too.
_DELIVERY_ID = re.compile(rb"^x-notifier-delivery-id:[ \t]*(.*?)\r?$", re.IGNORECASE | re.MULTILINE)
_LONGEST_COMMAND_LINE = 64 * 1024  # a client sending more without a CRLF is not speaking SMTP
_EHLO_REPLY = (b"250-bench-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
               b"250 SIZE 33554432\r\n")
_REPLIES = {
    b"MAIL": b"250 2.1.0 OK\r\n",
    b"RCPT": b"250 2.1.5 OK\r\n",
    b"DATA": b"354 End data with <CR><LF>.<CR><LF>\r\n",
    b"RSET": b"250 2.0.0 OK\r\n",
    b"NOOP": b"250 2.0.0 OK\r\n",
    b"HELO": b"250 bench-sink\r\n",
    b"EHLO": _EHLO_REPLY,
}
_QUEUED = b"250 2.0.0 OK: queued\r\n"


def delivery_id_of(message: bytes) -> str:
    """The message's X-Notifier-Delivery-Id ("" if absent), read from its head only."""
    head = message.split(b"\r\n\r\n", 1)[0]
    match = _DELIVERY_ID.search(head)
    return match[1].decode("ascii", errors="replace") if match else ""


class _SinkConnection(asyncio.Protocol):
    """One client's session. Commands are answered as they are read, a pipelined group in one
    write. A message's answer waits `latency` without holding up other connections; replies to what
    the client sends meanwhile queue behind it, so every reply leaves in the order of its command."""

    def __init__(self, sink: LeanSmtpSink) -> None:
        self._sink = sink
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._in_data = False
        self._scanned = 0  # how much of a message's buffer is known to hold no end marker
        # Replies behind a message's pending answer, in order: [reply, or None until answered; close after].
        self._outbox: deque[list] = deque()

    def connection_made(self, transport) -> None:
        self._transport = transport
        transport.write(b"220 bench-sink ESMTP\r\n")

    def connection_lost(self, exc) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        replies: list[bytes] = []
        while self._message_take(replies) if self._in_data else self._command_take(replies):
            pass
        if replies:
            self._send(b"".join(replies))

    def _command_take(self, replies: list[bytes]) -> bool:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > _LONGEST_COMMAND_LINE and self._transport is not None:
                self._transport.close()
            return False
        verb = bytes(self._buffer[:4]).upper()
        del self._buffer[:end + 2]
        if verb == b"QUIT":
            self._send(b"".join(replies) + b"221 2.0.0 Bye\r\n", close_after=True)
            replies.clear()
            self._buffer.clear()
            return False
        replies.append(_REPLIES.get(verb, b"500 5.5.2 Command not recognized\r\n"))
        self._in_data, self._scanned = verb == b"DATA", 0
        return True

    def _message_take(self, replies: list[bytes]) -> bool:
        if self._buffer.startswith(b".\r\n"):  # the buffer starts where the message does: an empty one
            message, end, end_length = b"", 0, 3
        else:
            end = self._buffer.find(b"\r\n.\r\n", max(self._scanned - 4, 0))
            if end < 0:
                self._scanned = len(self._buffer)
                return False
            message, end_length = bytes(self._buffer[:end + 2]), 5
        del self._buffer[:end + end_length]
        self._in_data = False
        if replies:
            self._send(b"".join(replies))
            replies.clear()
        answer = [None, False]
        self._outbox.append(answer)
        asyncio.get_running_loop().call_later(self._sink.latency, self._accept, message, answer)
        return True

    def _accept(self, message: bytes, answer: list) -> None:
        # Logged even if the client has gone meanwhile: the provider took the message.
        self._sink.received.append(f"{time.time():.6f} {delivery_id_of(message)}\n")
        answer[0] = _QUEUED
        self._flush()

    def _send(self, reply: bytes, close_after: bool = False) -> None:
        if self._outbox:
            self._outbox.append([reply, close_after])
        elif self._transport is not None:
            self._transport.write(reply)
            if close_after:
                self._transport.close()

    def _flush(self) -> None:
        while self._outbox and self._outbox[0][0] is not None:
            reply, close_after = self._outbox.popleft()
            if self._transport is not None:
                self._transport.write(reply)
                if close_after:
                    self._transport.close()


class LeanSmtpSink:
    """Accepts every message after `latency` seconds and keeps one line per message for `drain()`."""

    def __init__(self, *, port: int, latency: float) -> None:
        self.port = port
        self.latency = latency
        self.received: list[str] = []

    async def listen(self) -> asyncio.Server:
        """Listening on 127.0.0.1:`port` once this returns."""
        return await asyncio.get_running_loop().create_server(lambda: _SinkConnection(self), "127.0.0.1", self.port)

    def drain(self) -> list[str]:
        taken, self.received = self.received, []
        return taken


def _serve_lean(args: argparse.Namespace, out) -> None:
    sink = LeanSmtpSink(port=args.port, latency=args.latency)

    async def run() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        async with await sink.listen():
            print(f"listening on smtp://127.0.0.1:{args.port}", flush=True)
            while not stopping.is_set():
                try:
                    await asyncio.wait_for(stopping.wait(), 0.25)
                except TimeoutError:
                    pass
                out.writelines(sink.drain())
                out.flush()

    asyncio.run(run())


def _serve_aiosmtpd(args: argparse.Namespace, out) -> None:
    import threading

    from tests.fakes.smtp import FakeSmtpServer

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    with FakeSmtpServer(latency=args.latency, port=args.port) as server:
        print(f"listening on {server.url}", flush=True)
        while True:
            stopped = stopping.wait(0.25)
            for mail in server.take_received():
                out.write(f"{mail.received_at:.6f} {delivery_id_of(mail.raw)}\n")
            out.flush()
            if stopped:
                break


def main() -> None:
    niceness_session_wide()
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.005)
    parser.add_argument("--out", required=True)
    parser.add_argument("--server", choices=("lean", "aiosmtpd"), default="lean")
    args = parser.parse_args()
    with open(args.out, "a") as out:
        (_serve_lean if args.server == "lean" else _serve_aiosmtpd)(args, out)


if __name__ == "__main__":
    main()
