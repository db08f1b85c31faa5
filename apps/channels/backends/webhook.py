"""Webhooks: the rendered JSON POSTed to the project's webhook_url, signed with its webhook_secret.

Receivers verify `X-Notifier-Signature: t=<unix seconds>,v1=<hex>`, where the hex is
HMAC-SHA256(webhook_secret, "<t>." + raw request body), compare in constant time, and refuse
a timestamp too far from their clock (replays). `X-Notifier-Delivery-Id` is the same on every
attempt of one delivery: receivers use it to drop the duplicates that at-least-once brings.
"""

import hashlib
import hmac
import json
import time
from datetime import UTC

import requests
from django.conf import settings

from apps.channels.base import (
    ChannelBackend,
    ChannelMessage,
    ContactPoints,
    PermanentProviderError,
    SendResult,
    TransientProviderError,
    retry_after_seconds,
)
from apps.channels.headers import DELIVERY_ID_HEADER
from apps.core.deadline import request_deadline
from apps.core.egress import AddressNotAllowed, pinned_session

SIGNATURE_HEADER = "X-Notifier-Signature"
TIMESTAMP_HEADER = "X-Notifier-Timestamp"
USER_AGENT = "Notifier-Webhook/1"

# Statuses that say "later": request timeout, too early, throttled; every 5xx too.
_TRANSIENT_STATUSES = frozenset({408, 425, 429})
# How much of a receiver's answer is kept on the attempt row, and read at most before giving up
# on the connection (reading a small answer to its end lets the connection be reused).
_RESPONSE_EXCERPT_BYTES = 1000
_RESPONSE_DRAIN_BYTES = 64 * 1024


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 a receiver recomputes to check a request came from us, unaltered."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


class WebhookBackend(ChannelBackend):
    """One requests.Session per worker process, so connections to a receiver are reused.

    OPTIONS: `connect_timeout`, `read_timeout` (seconds, per connection attempt and per read;
    defaults 5 and 10) and `total_timeout` (seconds for the whole request, answer included;
    default 15): a receiver that drips its answer is cut off there (apps/core/deadline.py).
    Redirects are not followed: they would replay the signed request, user data included, to an
    address the project never configured (and 301/302 turn a POST into a GET). A 3xx is therefore
    a permanent error telling the project to set webhook_url to the final address.
    Requests go only to allowed addresses (apps/core/egress.py), checked again at each send
    and connected to as checked, since DNS may answer otherwise than when webhook_url was set.
    """

    channel = "webhook"
    held_by_quiet_hours = False  # it goes to the product's backend, not to the user

    def __init__(self, *, connect_timeout: float = 5.0, read_timeout: float = 10.0, total_timeout: float = 15.0,
                 **options):
        super().__init__(**options)
        self.timeout = (connect_timeout, read_timeout)
        self.total_timeout = total_timeout
        self._session: requests.Session | None = None

    def missing_contact_reason(self, contacts: ContactPoints) -> str:
        # Webhooks are always signed, so the secret is as necessary as the URL.
        if contacts.webhook_url and contacts.webhook_secret:
            return ""
        return "the project has no webhook_url and webhook_secret"

    def send(self, message: ChannelMessage) -> SendResult:
        if not message.webhook_url or not message.webhook_secret:
            raise PermanentProviderError("The project has no webhook_url and webhook_secret.", code="webhook_not_configured")
        body = json.dumps(
            {
                "id": message.delivery_id,
                "notification_id": message.notification_id,
                "to": message.user_external_id,
                "template": message.template_key,
                "data": message.content,
                "created_at": message.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        timestamp = int(time.time())
        signature = webhook_signature(secret=message.webhook_secret, timestamp=timestamp, body=body)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: f"t={timestamp},v1={signature}",
            DELIVERY_ID_HEADER: message.delivery_id,
        }
        with request_deadline(self.total_timeout) as deadline:
            try:
                response = self._session_get().post(
                    message.webhook_url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False,
                    stream=True,
                )
            except AddressNotAllowed as exc:
                raise PermanentProviderError(
                    f"The webhook_url is not allowed: {exc} Webhooks go only to public addresses.",
                    code="address_not_allowed",
                ) from exc
            except requests.RequestException as exc:
                if deadline.expired:
                    self._session_discard()
                    raise TransientProviderError(
                        f"The webhook did not answer within {self.total_timeout:g} s.", code="timeout"
                    ) from exc
                raise _request_error(exc) from exc
            # The status is in: the receiver's answer is known. The deadline may still cut the
            # body short, which only shortens the excerpt kept on the attempt.
            with response:
                answer = {"status": response.status_code, "body": _body_excerpt(response)}
            if deadline.expired:
                self._session_discard()
        return self._result(response, answer)

    def _result(self, response: requests.Response, answer: dict) -> SendResult:
        status = response.status_code
        if 200 <= status < 300:
            return SendResult(response=answer)
        message = f"The webhook answered HTTP {status}."
        if status in _TRANSIENT_STATUSES or status >= 500:
            raise TransientProviderError(message, code=str(status), response=answer, retry_after=_retry_after(response))
        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            raise PermanentProviderError(
                f"{message} Redirects are not followed; set webhook_url to the final address ({location[:200]}).",
                code=str(status), response=answer,
            )
        raise PermanentProviderError(message, code=str(status), response=answer)

    def _session_discard(self) -> None:
        # The connection was cut mid-exchange: start the next send on a fresh session.
        if self._session is not None:
            self._session.close()
        self._session = None

    def _session_get(self) -> requests.Session:
        if self._session is None:
            self._session = pinned_session(resolve_timeout=self.timeout[0])
        return self._session


def _request_error(exc: requests.RequestException) -> PermanentProviderError | TransientProviderError:
    if isinstance(exc, requests.Timeout):
        return TransientProviderError(f"The webhook timed out: {exc}", code="timeout")
    if isinstance(exc, requests.ConnectionError):
        return TransientProviderError(f"Cannot connect to the webhook: {exc}", code="connection")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema | requests.exceptions.InvalidSchema):
        return PermanentProviderError(f"The webhook_url is not usable: {exc}", code="invalid_url")
    # A broken exchange (bad chunking, ...): worth another try.
    return TransientProviderError(f"The webhook request failed: {exc}", code="http_error")


def _body_excerpt(response: requests.Response) -> str:
    excerpt, total = b"", 0
    try:
        for chunk in response.iter_content(4096):
            if len(excerpt) < _RESPONSE_EXCERPT_BYTES:
                excerpt += chunk[: _RESPONSE_EXCERPT_BYTES - len(excerpt)]
            total += len(chunk)
            if total > _RESPONSE_DRAIN_BYTES:
                break  # not worth reading on: closing drops the connection instead
    except requests.RequestException:
        pass  # the status is what counts; a body cut short only shortens the excerpt
    return excerpt.decode(errors="replace")


def _retry_after(response: requests.Response) -> float | None:
    # Honoured up to a cap: beyond it, a stuck receiver would park deliveries.
    return retry_after_seconds(response.headers.get("Retry-After"), cap=settings.NOTIFIER_MAX_RETRY_AFTER_SECONDS)
