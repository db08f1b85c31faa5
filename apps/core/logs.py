"""Log lines: JSON in production, text in development; every line masked and correlated.

Both formatters mask what they write, after everything (message, arguments, exception text,
extra fields) has been put together (the JSON one field by field): a masking filter that rewrote only `record.msg` would miss
an address inside an exception's text or an argument formatted later. What is masked:

- email addresses, Unicode ones too: `ada@example.com` → `a***@example.com`, `o'brien@bücher.example`
  → `o***@bücher.example` (the first letter and the domain stay, to tell a provider's problem);
- phone numbers written with their country code, spaced or not: `+1 415 555 0100` → `+1***00`,
  `+6834002` → `+683***02` (found by phonenumbers' matcher, so a number is masked whole whatever
  its length or grouping; an id or a timestamp's `+00:00` is not a number);
- credentials: `Api-Key …`, `Bearer …`, `Basic …`, our API keys (`ntf_…`), the password in a URL
  (`amqp://user:***@host`), and `secret`/`token`/`password`/`auth_token`-like `key=value` or
  `"key": "value"` pairs;
- the token of a signed link's path: `/unsubscribe/<token>` → `/unsubscribe/***`, and
  `/preferences/<token>` → `/preferences/***` (the token is the only credential those pages need,
  and its payload, signed not encrypted, names the user).

Every record gets `correlation_id` (the id bound by apps/core/correlation.py, "" when none).
"""

import logging
import re
from datetime import date, time
from enum import Enum

import phonenumbers
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from apps.core.correlation import correlation_id_get

# RFC 6531 addresses: a local part of letters (any script), digits and the punctuation RFC 5322
# allows, less `=`, `/` and `?`, which in a log line join a key or a URL to the address
# (`to=ada@…`); a domain of labels in any script, or punycode. It matches from the local part's
# first character (the lookbehind skips positions inside a word), keeping a leading quote outside.
_EMAIL_LOCAL = r"[\w.!#$%&'*+^`{|}~-]"
_EMAIL = re.compile(
    rf"(?<!{_EMAIL_LOCAL})('?)(\w){_EMAIL_LOCAL}*@((?:[^\W_](?:[\w-]{{0,61}}[^\W_])?\.)+(?:xn--[a-z0-9-]+|[^\W\d_]{{2,}}))"
)
# Country codes do not start with 0: `+00:00` in a timestamp is not a hint of a phone number.
_PHONE_HINT = re.compile(r"\+[1-9]")
_SCHEME_CREDENTIAL = re.compile(r"\b(Api-Key|Bearer|Basic|Token)(\s+)[^\s\"',;]+", re.IGNORECASE)
_API_KEY = re.compile(r"\bntf_[A-Za-z0-9_-]+")
_URL_PASSWORD = re.compile(r"(://[^:/@\s\"']+:)[^@\s\"']+@")
_SECRET_PAIR = re.compile(
    r"""((?:secret|token|password|passwd|auth_token|api_key|apikey|credentials?)\w*["']?\s*[:=]\s*["']?)"""
    r"""[^\s"',;&}]+""",
    re.IGNORECASE,
)
# The token of a signed link (apps/users/unsubscribe.py, apps/users/preference_links.py), wherever
# the path is written.
_SIGNED_LINK_TOKEN = re.compile(r"(/(?:unsubscribe|preferences)/)[^/\s?#\"']+")
MASK = "***"

# What a LogRecord collects on every call and no line here writes: the caller's file, line and
# function (found by walking the stack), the thread's and the process's names. Neither formatter
# has them (the JSON one: timestamp, level, logger, message, correlation_id, pid, exception text,
# extras). Python's logging HOWTO, "Optimization", names these switches; `stack_info=True`, which
# nothing here asks for, would need the stack walk back.
logging._srcfile = None
logging.logThreads = False
logging.logMultiprocessing = False


_CREDENTIAL_HINTS = ("key", "bearer", "basic", "token", "ntf_", "secret", "passw", "credential")
# Every test in `mask` in one search of the lowered text, as loose as any of them: a field it does
# not match (a level, an id, a method, a timestamp) is written as it is after one scan in C, a third
# of what the tests one by one cost (~1.7 µs a field, ten fields a line: docs/performance.md).
_MAY_NEED_MASKING = re.compile("|".join(["@", r"\+[1-9]", "/unsubscribe/", "/preferences/", *map(re.escape, _CREDENTIAL_HINTS)]))


def mask(text: str) -> str:
    """`text` with emails, phone numbers and credentials masked (see the module docstring).

    Each pattern runs only where a cheap test says it may match: most fields of a line (ids,
    names, numbers) pass untouched at the cost of one search.
    """
    if not text or not _MAY_NEED_MASKING.search(text.lower()):
        return text
    if "@" in text:
        text = _URL_PASSWORD.sub(rf"\g<1>{MASK}@", text)
        text = _EMAIL.sub(rf"\g<1>\g<2>{MASK}@\g<3>", text)
    lowered = text.lower()
    if any(hint in lowered for hint in _CREDENTIAL_HINTS):
        text = _SCHEME_CREDENTIAL.sub(rf"\g<1>\g<2>{MASK}", text)
        text = _API_KEY.sub(f"ntf_{MASK}", text)
        text = _SECRET_PAIR.sub(rf"\g<1>{MASK}", text)
    if "+" in text and _PHONE_HINT.search(text):
        text = _phone_numbers_masked(text)
    if "/unsubscribe/" in text or "/preferences/" in text:
        text = _SIGNED_LINK_TOKEN.sub(rf"\g<1>{MASK}", text)
    return text


def _phone_numbers_masked(text: str) -> str:
    """Each number written with its country code, as `+<country code>***<last two digits>`.

    POSSIBLE, not VALID: a number a user mistyped, or one from an unassigned range, is still
    theirs to keep out of the logs. Region "ZZ": only numbers with their `+` are looked for, so
    counts and ids are not taken for national numbers.
    """
    parts, end = [], 0
    for match in phonenumbers.PhoneNumberMatcher(text, "ZZ", leniency=phonenumbers.Leniency.POSSIBLE):
        digits = str(match.number.national_number)
        parts += [text[end:match.start], f"+{match.number.country_code}{MASK}{digits[-2:]}"]
        end = match.end
    return "".join(parts) + text[end:] if parts else text


class CorrelationIdFilter(logging.Filter):
    """Adds `correlation_id` to every record a handler emits."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", ""):
            record.correlation_id = correlation_id_get()
        return True


class TextFormatter(logging.Formatter):
    """`make run`'s readable lines, masked; the correlation id in brackets when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return mask(line)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        correlation_id = getattr(record, "correlation_id", "")
        return f"{line} [{correlation_id}]" if correlation_id else line


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: timestamp, level, logger, message, correlation_id, pid,
    exception text and any `extra` fields; every string in it masked."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("timestamp", True)
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger", "process": "pid"})
        super().__init__("%(levelname)s %(name)s %(message)s %(correlation_id)s %(process)d", *args, **kwargs)

    def process_log_record(self, log_data: dict) -> dict:
        # Masked field by field before serialising (masking the JSON text could cut an escape).
        return {key: _masked(value) for key, value in super().process_log_record(log_data).items()}


def _masked(value):
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    if value is None or isinstance(value, int | float | date | time | Enum):
        return value  # the encoder writes these as themselves (dates in ISO 8601)
    # Anything else would be written as its str(): Django's `request` extra holds the path.
    return mask(str(value))
