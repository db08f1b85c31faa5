"""An email's bytes, built once per content and addressed per recipient.

Django's EmailMultiAlternatives builds an `email.message` tree and serializes it through the
`email` package's generator for every message: about half a millisecond of CPU, the worker's
largest cost per email. Yet the emails of one template version and data differ only in a few
headers. So the part that depends on the content (Subject, From, the MIME structure, each body
encoded) is built once into bytes (`email_prepare`, kept in a small cache), and each recipient's
message is those bytes with its own headers put in front of the blank line that ends the header
(`email_address`): To, Date, Message-ID, X-Notifier-Delivery-Id and the List-Unsubscribe pair.

The output is what RFC 5322 and MIME ask: CRLF line ends; headers in ASCII, non-ASCII text as
RFC 2047 encoded words (the `email` package's own Header); a body part in 7bit when it is ASCII
with lines of at most 998 bytes, else quoted-printable UTF-8 (7-bit clean, unlike Django's
8bit, so no relay has to convert it); text and HTML as multipart/alternative.
"""

import functools
import random
import re
import threading
import time
from binascii import b2a_qp
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from email.header import Header
from email.utils import formatdate, parseaddr

from django.core.mail import BadHeaderError
from django.core.mail.message import sanitize_address

# RFC 5322: a line SHOULD be at most 78 characters and MUST be at most 998.
_FOLD_AT = 78
_MAX_LINE = 998
_NEWLINES = re.compile(r"\r\n|\r|\n")
_CACHE_ENTRIES = 32


@dataclass(frozen=True)
class PreparedEmail:
    """The content's part of every message sent with it: the header lines that do not depend on
    the recipient, and the body after the blank line."""

    envelope_from: str
    head: bytes
    body: bytes


def email_prepare(*, from_email: str, subject: str, text: str, html: str = "") -> PreparedEmail:
    """The prepared bytes of this content, built on first use and kept for the next recipients.

    Raises BadHeaderError for a subject or sender with a line break (it could never be sent).
    """
    key = (from_email, subject, text, html)
    with _cache_lock:
        prepared = _cache.get(key)
        if prepared is not None:
            _cache.move_to_end(key)
            return prepared
    prepared = _prepare(from_email=from_email, subject=subject, text=text, html=html)
    with _cache_lock:
        _cache[key] = prepared
        while len(_cache) > _CACHE_ENTRIES:
            _cache.popitem(last=False)
    return prepared


def email_address(prepared: PreparedEmail, *, to: str, headers: Mapping[str, str]) -> tuple[str, bytes]:
    """The envelope recipient and the whole message for one recipient: `headers` (Message-ID,
    the delivery id, List-Unsubscribe, ...) follow To and Date, after the content's headers."""
    recipient = to if to.isascii() else sanitize_address(to, "utf-8")  # an IDN domain in punycode
    lines = [prepared.head, _header("To", recipient), _header("Date", _date())]
    lines.extend(_header(name, value) for name, value in headers.items())
    return recipient, b"".join(lines) + b"\r\n" + prepared.body


@functools.lru_cache(maxsize=8)
def _sender(from_email: str) -> tuple[str, bytes]:
    """The envelope sender and the From header (a few per process: the channel's settings)."""
    sender = sanitize_address(from_email, "utf-8")
    return parseaddr(sender)[1], _header("From", sender)


def _prepare(*, from_email: str, subject: str, text: str, html: str) -> PreparedEmail:
    envelope_from, from_header = _sender(from_email)
    head = [from_header, _header("Subject", subject), b"MIME-Version: 1.0\r\n"]
    if not html:
        part_head, body = _text_part(text, "plain")
        return PreparedEmail(envelope_from=envelope_from, head=b"".join(head) + part_head, body=body)
    parts = [_text_part(text, "plain"), _text_part(html, "html")]
    boundary = _boundary(parts)
    body = b"".join(b"--" + boundary + b"\r\n" + part_head + b"\r\n" + part_body for part_head, part_body in parts)
    head.append(b'Content-Type: multipart/alternative; boundary="' + boundary + b'"\r\n')
    return PreparedEmail(envelope_from=envelope_from, head=b"".join(head),
                         body=body + b"--" + boundary + b"--\r\n")


def _text_part(content: str, subtype: str) -> tuple[bytes, bytes]:
    """A text part's headers and its body, encoded, ending in CRLF."""
    lines = _NEWLINES.split(content)
    if content.isascii() and all(len(line) <= _MAX_LINE for line in lines):
        encoding, body = "7bit", "\r\n".join(lines).encode("ascii")
    else:
        # b2a_qp encodes trailing whitespace and '=' and breaks lines at 76; it is given \n line
        # ends and writes \n, which become CRLF.
        encoding = "quoted-printable"
        body = b2a_qp("\n".join(lines).encode("utf-8", errors="replace"), istext=True).replace(b"\n", b"\r\n")
    head = (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {encoding}\r\n").encode("ascii")
    return head, body if body.endswith(b"\r\n") else body + b"\r\n"


def _boundary(parts: list[tuple[bytes, bytes]]) -> bytes:
    # A boundary must not occur in the parts it separates; a random one almost never does.
    while True:
        boundary = f"==============={random.randrange(10**19):019d}==".encode("ascii")
        if not any(boundary in body for _, body in parts):
            return boundary


def _header(name: str, value: str) -> bytes:
    """One header field, folded, ending in CRLF; non-ASCII values as RFC 2047 encoded words."""
    if "\n" in value or "\r" in value:
        raise BadHeaderError(f"Header values can't contain newlines (got {value!r} for header {name!r})")
    if not value.isascii():
        return f"{name}: {Header(value, 'utf-8', header_name=name).encode(linesep=chr(13) + chr(10))}\r\n".encode(
            "ascii")
    line = f"{name}: {value}"
    if len(line) <= _FOLD_AT:
        return (line + "\r\n").encode("ascii")
    return (_fold(line) + "\r\n").encode("ascii")


def _fold(line: str) -> str:
    """Fold an ASCII header line at spaces so that each line is at most 78 characters where a
    space allows (a longer word stays whole: RFC 5322 allows up to 998). The field's name keeps
    its value's first word on its line: a value read back starts with no folding space."""
    name, first, rest = line.split(" ", 2) if line.count(" ") >= 2 else (line, "", "")
    if not first:
        return line
    folded, current = [], f"{name} {first}"
    for word in rest.split(" "):
        if word and len(current) + 1 + len(word) > _FOLD_AT:  # never a line of whitespace only
            folded.append(current)
            current = " " + word  # the continuation line starts with the space folded at
        else:
            current = f"{current} {word}"
    folded.append(current)
    return "\r\n".join(folded)


_date_cache: tuple[int, str] = (0, "")


def _date() -> str:
    # formatdate costs more than the rest of a recipient's headers; it changes once a second.
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now))
    return _date_cache[1]


# Processes keep it; threads (the threads pool) share it.
_cache: OrderedDict[tuple[str, str, str, str], PreparedEmail] = OrderedDict()
_cache_lock = threading.Lock()
