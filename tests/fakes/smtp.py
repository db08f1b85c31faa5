"""A real SMTP server for tests, built on aiosmtpd.

It imitates an ESP's SMTP submission endpoint: it accepts any number of
connections and any number of mail transactions per connection (MAIL, RCPT,
DATA, repeated; pipelined too, as it offers PIPELINING), parses each accepted
message, and can be scripted to answer the way a real server fails: a 4xx
reply to DATA (transient: throttling, greylisting; the ESP drops the message
and the sender must retry) or a 5xx reply to RCPT TO (permanent: the mailbox
does not exist). ``latency`` makes
each accepted DATA take that long, like an ESP's queueing, without blocking
other connections.
"""

from __future__ import annotations

import asyncio
import email.policy
import functools
import random
import re
import time
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from typing import cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.fakes.base import FakeServer
from tests.support.processes import free_port

_PARSER = BytesParser(policy=email.policy.default)


@dataclass(frozen=True)
class ReceivedMail:
    """One accepted mail transaction: the SMTP envelope, the message and when it arrived
    (``time.time()``, so that a test can compare it with a database timestamp)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes  # the message as it came over the wire (dot-stuffing undone)
    received_at: float = field(default_factory=time.time)

    @functools.cached_property
    def message(self) -> EmailMessage:
        """The message parsed, when first asked for: parsing every message as it arrives would cost
        the server more than the rest of its work (the benchmark reads only one header, `header`)."""
        return _PARSER.parsebytes(self.raw)

    def header(self, name: str) -> str:
        """One header's value as sent ("" if absent), read without parsing the message."""
        head = self.raw.split(b"\r\n\r\n", 1)[0]
        match = re.search(rb"^" + re.escape(name.encode("ascii")) + rb":[ \t]*(.*?)\r?$", head,
                          re.IGNORECASE | re.MULTILINE)
        return match[1].decode("ascii", errors="replace") if match else ""


class _Handler:
    """aiosmtpd hooks; they run on the controller's event-loop thread."""

    def __init__(self, server: FakeSmtpServer) -> None:
        self._server = server

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does itself when no handler takes EHLO
        if not self._server.pipelining:
            return responses
        # Like an ESP: aiosmtpd reads commands one line at a time, so a pipelined group just works.
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]) -> str:
        reply = self._server._rcpt_reply(address)
        if reply is None:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
            return "250 OK"
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._server.latency:
            await asyncio.sleep(self._server.latency)
        reply = self._server._data_reply(envelope)
        stall = self._server._stall_take() if reply.startswith("250") else 0.0
        if stall:
            await asyncio.sleep(stall)  # taken, but the client hears nothing before it gives up
        return reply


class FakeSmtpServer(FakeServer):
    """SMTP server on 127.0.0.1 and a free port, recording every accepted message.

    Use as a context manager, or call ``start()`` and ``stop()``. All methods are
    thread-safe; scripted failures apply to every connection.
    """

    host = "127.0.0.1"

    def __init__(self, *, latency: float = 0.0, port: int | None = None, pipelining: bool = True) -> None:
        """``latency``: seconds each DATA command waits before its reply (0: none). ``pipelining``:
        offer PIPELINING (RFC 2920) in the EHLO reply, as ESPs do."""
        super().__init__()
        self.port = port or free_port()
        self.latency = latency
        self.pipelining = pipelining
        self._failure_rate = 0.0
        self._failure_rate_reply = ""
        self._random = random.Random()
        self._rejected_recipients: dict[str, str] = {}
        self._stalls: deque[float] = deque()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        """``smtp://127.0.0.1:PORT``"""
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> None:
        """Start listening; returns once the server answers connections.

        After ``stop()`` it can start again on the same port (an outage and recovery).
        """
        # enable_SMTPUTF8: like any current ESP, accept non-ASCII addresses.
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, enable_SMTPUTF8=True)
        self._controller.start()

    def stop(self) -> None:
        """Stop listening and drop open connections; recorded mail and scripts stay."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # -- what was received -------------------------------------------------

    @property
    def received(self) -> list[ReceivedMail]:
        """Accepted transactions, oldest first (a copy)."""
        return self.recorded

    @property
    def messages(self) -> list[EmailMessage]:
        """Accepted messages, oldest first (a copy)."""
        return [mail.message for mail in self.received]

    def take_received(self) -> list[ReceivedMail]:
        """Accepted transactions since the last call, oldest first, forgetting them: a long run
        (the benchmark) reads them as they come without holding every message in memory."""
        with self._lock:
            taken, self._recorded = self._recorded, []
        return taken

    def received_for(self, address: str) -> list[EmailMessage]:
        """Accepted messages whose envelope recipients include ``address`` (case-insensitive)."""
        wanted = address.lower()
        return [m.message for m in self.received if wanted in (r.lower() for r in m.rcpt_tos)]

    def _scripts_clear(self) -> None:
        self._failure_rate = 0.0
        self._rejected_recipients.clear()
        self._stalls.clear()

    # -- scripted failures -------------------------------------------------

    def fail_next(self, count: int, code: int = 451, message: str = "4.3.0 try again later") -> None:
        """Answer the next ``count`` DATA commands with ``code message`` instead of accepting.

        Calls queue up: ``fail_next(2); fail_next(1, 554, "5.7.1 rejected")`` fails
        three transactions, the last one permanently.
        """
        self._script_next(count, f"{code} {message}")

    def set_failure_rate(self, rate: float, code: int = 451, seed: int | None = None) -> None:
        """Fail a random fraction ``rate`` (0..1) of DATA commands with ``code``.

        ``seed`` makes the sequence of failures reproducible. ``fail_next`` takes
        precedence. ``set_failure_rate(0)`` switches it off.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        enhanced = "4.3.0 try again later" if code < 500 else "5.3.0 message rejected"
        with self._lock:
            self._failure_rate = rate
            self._failure_rate_reply = f"{code} {enhanced}"
            self._random = random.Random(seed)

    def stall_next(self, count: int, seconds: float) -> None:
        """Accept (and record) the next ``count`` messages, but answer DATA only after ``seconds``:
        a client that times out meanwhile believes the send failed, although the mail was taken."""
        with self._lock:
            self._stalls.extend([seconds] * count)

    def _stall_take(self) -> float:
        with self._lock:
            return self._stalls.popleft() if self._stalls else 0.0

    def reject_recipient(self, address: str, code: int = 550, message: str = "5.1.1 mailbox unavailable") -> None:
        """Answer ``RCPT TO:<address>`` with ``code message``, every time."""
        with self._lock:
            self._rejected_recipients[address.lower()] = f"{code} {message}"

    # -- called by the handler on the event-loop thread --------------------

    def _rcpt_reply(self, address: str) -> str | None:
        with self._lock:
            return self._rejected_recipients.get(address.lower())

    def _data_reply(self, envelope: Envelope) -> str:
        failure = self._take_attempt()
        if failure is not None:
            return failure
        with self._lock:
            if self._failure_rate and self._random.random() < self._failure_rate:
                return self._failure_rate_reply
        content = cast(bytes, envelope.original_content)
        mail = ReceivedMail(cast(str, envelope.mail_from), tuple(envelope.rcpt_tos), content)
        self._record(mail)
        return "250 2.0.0 OK: queued"


__all__ = ["FakeSmtpServer", "ReceivedMail"]
