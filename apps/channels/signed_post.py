"""A signed JSON POST to an address a tenant chose: the webhook channel and status webhooks share it.

Requests are signed as the Standard Webhooks specification says (https://www.standardwebhooks.com):
`webhook-id` (the delivery's id, or the status event's: the same on every attempt),
`webhook-timestamp` (unix seconds of the attempt) and `webhook-signature`, space-separated
`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, one per active secret (two while a
secret is rotated). The key is not the project's webhook_secret itself but derived from it per
kind of request (`signing_key`): a request taken from the webhook channel does not verify at the
status webhook receiver, nor the reverse, whatever either receiver checks. docs/api.md,
"Signatures", is the receivers' side.

The former headers (`X-Notifier-Timestamp`, `X-Notifier-Signature: t=<t>,v1=<hex>` over
"<t>.<body>" with the secret itself) are still sent for one release, deprecated.

The POST goes only to allowed addresses (apps/core/egress.py), checked again at each request and
connected to as checked; it is cut at a total deadline (apps/core/deadline.py), so a receiver that
drips its answer cannot hold a worker. Redirects are not followed: they would replay the signed
request to an address the project never configured (and 301/302 turn a POST into a GET).
"""

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence

import requests
from django.conf import settings

from apps.channels.base import PermanentProviderError, TransientProviderError, retry_after_seconds
from apps.core.deadline import request_deadline
from apps.core.egress import AddressNotAllowed, pinned_session

WEBHOOK_ID_HEADER = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"
# Deprecated: sent beside the Standard Webhooks headers for one release, then dropped.
SIGNATURE_HEADER = "X-Notifier-Signature"
TIMESTAMP_HEADER = "X-Notifier-Timestamp"

# What a key is derived for (`signing_key`): one label per kind of request, never shared.
WEBHOOK_PURPOSE = "notifier.webhook"
STATUS_WEBHOOK_PURPOSE = "notifier.status_webhook"

# Statuses that say "later": request timeout, too early, throttled; every 5xx too.
_TRANSIENT_STATUSES = frozenset({408, 425, 429})
# How much of a receiver's answer is kept, and read at most before giving up on the connection
# (reading a small answer to its end lets the connection be reused).
_RESPONSE_EXCERPT_BYTES = 1000
_RESPONSE_DRAIN_BYTES = 64 * 1024


def signing_key(*, secret: str, purpose: str) -> bytes:
    """The key that signs one kind of request: HMAC-SHA256(webhook_secret, purpose). Receivers
    derive the same (docs/api.md, "Signatures") and give it to their Standard Webhooks verifier."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


def standard_signature(*, key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of the Standard Webhooks `webhook-signature` header."""
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The deprecated `X-Notifier-Signature`'s hex HMAC-SHA256 of "<t>." + body, with the secret itself."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signed_headers(*, secrets: Sequence[str], purpose: str, message_id: str, body: bytes, user_agent: str,
                   timestamp: int | None = None) -> dict[str, str]:
    """The headers of a signed JSON request: content type, agent, the Standard Webhooks id,
    timestamp and signatures (one per secret in `secrets`, the current one first), and the
    deprecated timestamp and signature (the current secret's)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signatures = [standard_signature(key=signing_key(secret=secret, purpose=purpose), message_id=message_id,
                                     timestamp=timestamp, body=body) for secret in secrets]
    return {
        "Content-Type": "application/json",
        "User-Agent": user_agent,
        WEBHOOK_ID_HEADER: message_id,
        WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
        WEBHOOK_SIGNATURE_HEADER: " ".join(signatures),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"t={timestamp},v1={webhook_signature(secret=secrets[0], timestamp=timestamp, body=body)}",
    }


class SignedPoster:
    """POSTs signed bodies on one requests.Session per process, so connections to a receiver are reused.

    `what` names the address in error messages ("webhook", "status webhook"); `url_field` is the
    project field to correct when the address is refused or redirects.
    """

    def __init__(self, *, what: str, url_field: str, connect_timeout: float, read_timeout: float,
                 total_timeout: float):
        self.what = what
        self.url_field = url_field
        self.timeout = (connect_timeout, read_timeout)
        self.total_timeout = total_timeout
        self._session: requests.Session | None = None

    def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> dict:
        """POST and return the receiver's answer ({"status", "body" excerpt}) when it is a 2xx.

        Raises TransientProviderError (timeouts, connection errors, 408/425/429, 5xx: try again
        later, with the receiver's Retry-After) or PermanentProviderError (refused address,
        unusable URL, redirects, other 4xx).
        """
        with request_deadline(self.total_timeout) as deadline:
            try:
                response = self._session_get().post(
                    url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False, stream=True,
                )
            except AddressNotAllowed as exc:
                raise PermanentProviderError(
                    f"The {self.url_field} is not allowed: {exc} Requests go only to public addresses.",
                    code="address_not_allowed",
                ) from exc
            except requests.RequestException as exc:
                if deadline.expired:
                    self._session_discard()
                    raise TransientProviderError(
                        f"The {self.what} did not answer within {self.total_timeout:g} s.", code="timeout"
                    ) from exc
                raise self._request_error(exc) from exc
            # The status is in: the receiver's answer is known. The deadline may still cut the
            # body short, which only shortens the excerpt kept.
            with response:
                answer = {"status": response.status_code, "body": _body_excerpt(response)}
            if deadline.expired:
                self._session_discard()
        self._check(response, answer)
        return answer

    def _check(self, response: requests.Response, answer: dict) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        message = f"The {self.what} answered HTTP {status}."
        if status in _TRANSIENT_STATUSES or status >= 500:
            raise TransientProviderError(message, code=str(status), response=answer, retry_after=_retry_after(response))
        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            raise PermanentProviderError(
                f"{message} Redirects are not followed; set {self.url_field} to the final address ({location[:200]}).",
                code=str(status), response=answer,
            )
        raise PermanentProviderError(message, code=str(status), response=answer)

    def _request_error(self, exc: requests.RequestException) -> PermanentProviderError | TransientProviderError:
        if isinstance(exc, requests.Timeout):
            return TransientProviderError(f"The {self.what} timed out: {exc}", code="timeout")
        if isinstance(exc, requests.ConnectionError):
            return TransientProviderError(f"Cannot connect to the {self.what}: {exc}", code="connection")
        if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                      | requests.exceptions.InvalidSchema):
            return PermanentProviderError(f"The {self.url_field} is not usable: {exc}", code="invalid_url")
        # A broken exchange (bad chunking, ...): worth another try.
        return TransientProviderError(f"The {self.what} request failed: {exc}", code="http_error")

    def _session_discard(self) -> None:
        """Start the next request on a fresh session (the connection was cut mid-exchange)."""
        if self._session is not None:
            self._session.close()
        self._session = None

    def _session_get(self) -> requests.Session:
        if self._session is None:
            self._session = pinned_session(resolve_timeout=self.timeout[0])
        return self._session


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
    # Honoured up to a cap: beyond it, a stuck receiver would park what waits for it.
    return retry_after_seconds(response.headers.get("Retry-After"), cap=settings.NOTIFIER_MAX_RETRY_AFTER_SECONDS)
