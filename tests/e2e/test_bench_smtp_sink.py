"""The bench's email provider (`python -m bench.smtp_sink`, lean by default) is an SMTP server our
backend and Python's own client can talk to: every message is answered after the latency the bench
asks for and logged with its delivery id, whether the client pipelines or not, and however TCP
splits what it sends."""

import signal
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.support.processes import REPO_ROOT, free_port, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def sink(tmp_path):
    """The sink as `make bench` starts it, 0.2 s a message; yields (port, its log file)."""
    port, out = free_port(), tmp_path / "received.txt"
    process = subprocess.Popen([sys.executable, "-m", "bench.smtp_sink", "--port", str(port), "--latency", "0.2",
                                "--out", str(out)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().startswith("listening on smtp://127.0.0.1:")
        yield port, out
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def logged(out: Path) -> list[tuple[float, str]]:
    lines = out.read_text().splitlines() if out.exists() else []
    return [(float(stamp), delivery_id) for stamp, _, delivery_id in (line.partition(" ") for line in lines)]


def message_with_id(delivery_id: str, body: str = "hello") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "hi"
    message["X-Notifier-Delivery-Id"] = delivery_id
    message.set_content(body)
    return message


def test_each_message_waits_the_latency_and_is_logged_with_its_delivery_id(sink):
    port, out = sink
    ids = [str(uuid.uuid4()) for _ in range(2)]
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("pipelining")
        before = time.time()
        # A line that starts with a dot is sent doubled: it must not end the message.
        client.send_message(message_with_id(ids[0], body="first\n.\n.. still the body\n"))
        client.rset()
        assert client.noop()[0] == 250
        client.send_message(message_with_id(ids[1]))
        elapsed = time.time() - before

    assert elapsed >= 0.4
    wait_until(lambda: len(logged(out)) == 2, timeout=5, message="both messages logged")
    assert [delivery_id for _, delivery_id in logged(out)] == ids
    assert all(before + 0.2 <= stamp <= time.time() for stamp, _ in logged(out))


@pytest.mark.parametrize("chunk", [None, 1, 7], ids=["one-write", "byte-by-byte", "7-byte-chunks"])
def test_a_pipelined_conversation_gets_every_reply_in_order_however_it_is_split(sink, chunk):
    port, out = sink
    ids = [str(uuid.uuid4()) for _ in range(2)]
    transaction = b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
    conversation = b"EHLO client\r\n" + b"".join(
        transaction + b"X-Notifier-Delivery-Id: " + delivery_id.encode() + b"\r\nSubject: hi\r\n\r\n..dot-stuffed\r\n.\r\n"
        for delivery_id in ids) + transaction + b".\r\n" + b"QUIT\r\n"  # the last message empty
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for start in range(0, len(conversation), chunk or len(conversation)):
            client.sendall(conversation[start:start + (chunk or len(conversation))])
        replies = b""
        while chunk_read := client.recv(4096):  # the server closes after QUIT's reply
            replies += chunk_read

    codes = [line[:3] for line in replies.decode().split("\r\n") if line and line[3] == " "]
    # The greeting, EHLO, then MAIL, RCPT, DATA and the message's answer three times, then QUIT's.
    assert codes == ["220", "250", *["250", "250", "354", "250"] * 3, "221"], replies
    wait_until(lambda: len(logged(out)) == 3, timeout=5, message="the three messages logged")
    assert [delivery_id for _, delivery_id in logged(out)] == [*ids, ""]


@pytest.mark.timeout(120)
def test_our_email_backend_sends_through_it_several_connections_at_once(tmp_path):
    """`python -m bench.smtp_client --server lean`: our backend, pipelining, 3 sends at once."""
    result = subprocess.run([sys.executable, "-m", "bench.smtp_client", "--server", "lean", "--emails", "60",
                             "--latency-ms", "1", "--concurrency", "3"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=100)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "lean, pipelining=True, concurrency=3: client CPU" in result.stdout, result.stdout
    assert "(60 emails)" in result.stdout, result.stdout
