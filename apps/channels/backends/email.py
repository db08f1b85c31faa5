"""Email through Django's email machinery (SMTP from EMAIL_URL, or the file/console backends)."""

import functools
import logging
import smtplib
import threading
import time
from email.utils import parseaddr

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection
from django.core.validators import validate_email
from environ import Env

from apps.channels.backends.email_mime import email_address, email_prepare
from apps.channels.backends.smtp_pipelining import smtp_pipelining, smtp_sendmail_pipelined
from apps.channels.base import (
    ChannelBackend,
    ChannelMessage,
    ContactPoints,
    PermanentProviderError,
    SendResult,
    TransientProviderError,
)
from apps.channels.headers import DELIVERY_ID_HEADER

logger = logging.getLogger(__name__)


def delivery_message_id(*, delivery_id, from_email: str) -> str:
    """The Message-ID of a delivery's email: the same on every attempt, so mail stores and
    receivers that drop repeated Message-IDs drop the duplicate an at-least-once retry sends.

    The domain is NOTIFIER_EMAIL_MESSAGE_ID_DOMAIN, else the sender's (RFC 5322 wants the right
    side to be ours, so the id is unique beyond this installation).
    """
    return f"<{delivery_id}@{_message_id_domain(settings.NOTIFIER_EMAIL_MESSAGE_ID_DOMAIN, from_email)}>"


def email_address_check_compiled() -> None:
    """Compile Django's email address check (`validate_email`, run on each send) now.

    Its regular expressions compile on first use: 23 ms, in each send thread that reaches it
    before the first has finished. A worker calls this before its pool children fork
    (celery_app.py), so they start with it compiled."""
    validate_email("someone@example.com")


@functools.lru_cache(maxsize=8)
def _message_id_domain(configured: str, from_email: str) -> str:
    # Parsing the sender cost more than the rest of an email's headers: once per sender, not per email.
    return configured or parseaddr(from_email)[1].rpartition("@")[2] or "localhost"


class DjangoEmailBackend(ChannelBackend):
    """Sends multipart text/HTML mail, keeping one SMTP connection open per sending thread: one per
    worker process, or one per send thread where the channel's SEND_CONCURRENCY sends a batch's
    emails several at a time (or with Celery's threads pool): an SMTP session cannot be shared by
    two senders at once.

    OPTIONS: `url`, the SMTP server in EMAIL_URL's form (default: EMAIL_URL's server; each
    server of EMAIL_FAILOVER_URLS is one more instance with its own `url`), `from_email` (default
    DEFAULT_FROM_EMAIL), `idle_check_seconds` (after this long unused, the connection is checked
    with NOOP before use, since servers drop idle clients).
    """

    channel = "email"
    concurrent_sends = True  # one SMTP connection per thread; nothing else shared but locked caches

    def __init__(self, *, url: str = "", from_email: str = "", idle_check_seconds: float = 30.0, **options):
        super().__init__(**options)
        self.from_email = from_email or settings.DEFAULT_FROM_EMAIL
        self.idle_check_seconds = idle_check_seconds
        # get_connection()'s arguments: EMAIL_URL's server (Django's EMAIL_* settings) without a url.
        self._connection_options = _connection_options(url) if url else {}
        self._local = threading.local()

    @property
    def provider_name(self) -> str:
        """`smtp:host:port` (never the credentials); the mail backend's name when it is not SMTP."""
        options = self._connection_options
        backend = options.get("backend", settings.EMAIL_BACKEND)
        if not backend.endswith("smtp.EmailBackend"):
            return backend.rsplit(".", 2)[-2]  # filebased, locmem, console
        return f"smtp:{options.get('host', settings.EMAIL_HOST)}:{options.get('port', settings.EMAIL_PORT)}"

    def missing_contact_reason(self, contacts: ContactPoints) -> str:
        return "" if contacts.email else "the user has no email address"

    def configuration_errors(self) -> list[str]:
        """What makes the emails lie (reported by the system checks): production has no default
        PUBLIC_BASE_URL, and without it no email could carry a one-click unsubscribe link."""
        if not settings.PUBLIC_BASE_URL:
            return ["PUBLIC_BASE_URL is not set: emails would carry no working one-click unsubscribe link. "
                    "Set it to the https:// address this service is reached at."]
        return []

    def send(self, message: ChannelMessage) -> SendResult:
        address, content = message.email, message.content
        if not address:  # removed since the notification was accepted
            raise PermanentProviderError("The user has no email address.", code="no_address")
        try:
            validate_email(address)
        except ValidationError:
            raise PermanentProviderError(f"Invalid email address {address!r}.", code="invalid_address") from None
        message_id = delivery_message_id(delivery_id=message.delivery_id, from_email=self.from_email)
        headers = {**message.headers, "Message-ID": message_id, DELIVERY_ID_HEADER: message.delivery_id}
        try:
            connection = self._connection_get()
            smtp = getattr(connection, "connection", None)
            if smtp is not None:
                self._send_prepared(smtp, address, content, headers)
            else:
                self._send_through_django(connection, address, content, headers)
        except BadHeaderError as exc:  # a rendered subject with a line break can never be sent
            raise PermanentProviderError(str(exc), code="invalid_header") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            self._raise_for_reply(*next(iter(exc.recipients.values())))
        except smtplib.SMTPResponseException as exc:  # SMTPDataError, SMTPSenderRefused, ...
            self._raise_for_reply(exc.smtp_code, exc.smtp_error)
        except (TimeoutError, smtplib.SMTPServerDisconnected, ConnectionError, OSError) as exc:
            self._connection_discard()
            raise TransientProviderError(f"SMTP connection failed: {exc}", code="connection") from exc
        except smtplib.SMTPException as exc:  # a session gone wrong in some other way: worth another try
            self._connection_discard()
            raise TransientProviderError(f"SMTP error: {exc}", code="smtp_error") from exc
        self._local.last_used = time.monotonic()
        return SendResult(provider_message_id=message_id)

    def _send_prepared(self, smtp: smtplib.SMTP, address: str, content: dict, headers: dict) -> None:
        """Over SMTP: the content's bytes built once for every recipient of it (email_mime.py),
        then this recipient's headers, straight to the session Django's backend opened; in two
        round trips where the server offers PIPELINING (smtp_pipelining.py)."""
        prepared = email_prepare(from_email=self.from_email, subject=content["subject"], text=content["text"],
                                 html=content.get("html") or "")
        recipient, data = email_address(prepared, to=address, headers=headers)
        if smtp_pipelining(smtp):
            smtp_sendmail_pipelined(smtp, prepared.envelope_from, recipient, data)
        else:
            smtp.sendmail(prepared.envelope_from, [recipient], data)

    def _send_through_django(self, connection, address: str, content: dict, headers: dict) -> None:
        # Django's file, console and in-memory backends (development and tests) keep the message object.
        email = EmailMultiAlternatives(subject=content["subject"], body=content["text"], from_email=self.from_email,
                                       to=[address], headers=headers, connection=connection)
        if content.get("html"):
            email.attach_alternative(content["html"], "text/html")
        email.send()

    def _raise_for_reply(self, code: int, reply: bytes | str):
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        message = f"SMTP {code} {text}"
        # A refused message leaves the session in an unknown state: start the next on a fresh one.
        self._connection_discard()
        # RFC 5321: 5xx is a permanent refusal (550 no such mailbox, 553 bad address, 554
        # rejected); 4xx (throttling, greylisting, 451 local error) and anything unexpected
        # may work later.
        if 500 <= code < 600:
            raise PermanentProviderError(message, code=str(code))
        raise TransientProviderError(message, code=str(code))

    @property
    def _connection(self):
        return getattr(self._local, "connection", None)

    def _connection_get(self):
        last_used = getattr(self._local, "last_used", 0.0)
        if self._connection is not None and time.monotonic() - last_used > self.idle_check_seconds:
            if not self._connection_alive():
                self._connection_discard()
        if self._connection is None:
            connection = get_connection(fail_silently=False, **self._connection_options)
            try:
                connection.open()
            except (smtplib.SMTPException, OSError) as exc:
                raise TransientProviderError(f"Cannot connect to the mail server: {exc}", code="connection") from exc
            self._local.connection = connection
            self._local.last_used = time.monotonic()
        return self._connection

    def _connection_alive(self) -> bool:
        smtp = getattr(self._connection, "connection", None)
        if smtp is None:
            return True  # not an SMTP backend (file, console): nothing to go stale
        try:
            return smtp.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False

    def _connection_discard(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # closing a broken connection may fail in many ways; it is gone either way
                logger.debug("closing a broken mail connection failed", exc_info=True)
        self._local.connection = None


def _connection_options(url: str) -> dict:
    """get_connection()'s arguments for an SMTP server given as a URL, read like EMAIL_URL."""
    config = Env.email_url_config(url)
    options = {
        "backend": config["EMAIL_BACKEND"], "host": config.get("EMAIL_HOST"), "port": config.get("EMAIL_PORT"),
        "username": config.get("EMAIL_HOST_USER") or "", "password": config.get("EMAIL_HOST_PASSWORD") or "",
        "use_tls": config.get("EMAIL_USE_TLS", False), "use_ssl": config.get("EMAIL_USE_SSL", False),
        "timeout": settings.EMAIL_TIMEOUT,
    }
    if config.get("EMAIL_FILE_PATH"):
        options["file_path"] = config["EMAIL_FILE_PATH"]
    return options
