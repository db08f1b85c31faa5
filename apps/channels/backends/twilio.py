"""SMS through Twilio's Programmable Messaging API, with the official `twilio` SDK.

Twilio's answers are sorted by its error code first, then by HTTP status
(https://www.twilio.com/docs/api/errors):

- transient: HTTP 429 / 20429 (too many concurrent requests), 21611 and 30001 (the sender's
  queue is full), any 5xx, connection errors and timeouts;
- our own configuration (401/403: wrong credentials, suspended account): a credentials error,
  transient like every backend's (ChannelBackend.credentials_errors_transient);
- everything else Twilio refuses with a 4xx is permanent: 21211 invalid 'To', 21610 the user
  replied STOP, 21612 unroutable, 21614 not SMS-capable, ...

Twilio does not send Retry-After on 429, and the SDK's exception would not carry it anyway, so
those retries follow the pipeline's own backoff.
"""

from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.urls import reverse
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from apps.channels.base import (
    ChannelBackend,
    ChannelMessage,
    ContactPoints,
    PermanentProviderError,
    SendResult,
    TransientProviderError,
)

TRANSIENT_ERROR_CODES = frozenset({20429, 21611, 30001})
# HTTP statuses that mean our account or credentials are wrong, not the message.
CONFIGURATION_HTTP_STATUSES = frozenset({401, 403})


def public_url(path: str) -> str:
    """The address the outside world (Twilio) reaches `path` at: PUBLIC_BASE_URL, not this host.

    Behind a proxy or load balancer the request's own host and scheme are internal ones, and
    Twilio signs the URL it called, so both the callback URL we give Twilio and the URL we check
    its signature against are built from PUBLIC_BASE_URL.
    """
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def status_callback_url() -> str:
    """Where Twilio posts delivery receipts for the messages we send; "" (no receipts) while
    PUBLIC_BASE_URL is not set, since a relative callback would make Twilio refuse the message."""
    return public_url(reverse("twilio-status-callback")) if settings.PUBLIC_BASE_URL else ""


class TwilioSmsBackend(ChannelBackend):
    """Sends the rendered `text` to the user's phone from TWILIO_FROM_NUMBER.

    OPTIONS (each defaults to the setting of the same name, upper-cased with TWILIO_):
    `account_sid`, `auth_token`, `from_number`, `api_base_url`; `timeout` in seconds for each
    HTTP call (default 10); `status_callback` (default: our callback under PUBLIC_BASE_URL;
    "" to ask for no receipts).

    One SDK client (one pooled HTTP session) serves every message of the worker process.
    """

    channel = "sms"
    provider = "twilio"

    def __init__(
        self,
        *,
        account_sid: str = "",
        auth_token: str = "",
        from_number: str = "",
        api_base_url: str = "",
        status_callback: str | None = None,
        timeout: float = 10.0,
        **options,
    ):
        super().__init__(**options)
        self.account_sid = account_sid or settings.TWILIO_ACCOUNT_SID
        self.auth_token = auth_token or settings.TWILIO_AUTH_TOKEN
        self.from_number = from_number or settings.TWILIO_FROM_NUMBER
        self.api_base_url = api_base_url or settings.TWILIO_API_BASE_URL
        self._status_callback = status_callback
        self.timeout = timeout
        self._client: Client | None = None

    def configuration_errors(self) -> list[str]:
        """What is missing for this backend to send at all (reported by the system checks)."""
        missing = [
            name
            for name, value in (
                ("TWILIO_ACCOUNT_SID", self.account_sid),
                ("TWILIO_AUTH_TOKEN", self.auth_token),
                ("TWILIO_FROM_NUMBER", self.from_number),
            )
            if not value
        ]
        return [f"{name} is not set." for name in missing]

    def configuration_warnings(self) -> list[str]:
        """What works but probably not as meant (reported by the system checks)."""
        host = urlsplit(settings.PUBLIC_BASE_URL).hostname or ""
        if self._status_callback is None and (not host or host in ("localhost", "::1") or host.startswith("127.")):
            return [f"PUBLIC_BASE_URL is {settings.PUBLIC_BASE_URL or 'not set'}, which Twilio cannot reach: "
                    "delivery receipts will not arrive and SMS will stay `sent`."]
        return []

    def signature_valid(self, *, url: str, params, signature: str) -> bool:
        """Whether a request to `url` carrying `params` was signed by Twilio with our auth token."""
        return bool(signature) and RequestValidator(self.auth_token).validate(url, params, signature)

    def missing_contact_reason(self, contacts: ContactPoints) -> str:
        return "" if contacts.phone else "the user has no phone number"

    def send(self, message: ChannelMessage) -> SendResult:
        to = message.phone
        if not to:
            raise PermanentProviderError("The user has no phone number.", code="no_phone")
        status_callback = status_callback_url() if self._status_callback is None else self._status_callback
        try:
            sent = self._client_get().messages.create(
                to=to, from_=self.from_number, body=message.content["text"], status_callback=status_callback or None
            )
        except TwilioRestException as exc:
            raise self._error_for(status=exc.status, code=exc.code, text=exc.msg) from exc
        except TwilioServiceException as exc:  # the SDK's name for errors in RFC 9457 shape
            raise self._error_for(status=exc.status, code=exc.code, text=exc.detail or exc.title) from exc
        except requests.Timeout as exc:
            # Twilio may have taken the message before the answer was lost: a retry can duplicate
            # it, which at-least-once accepts; a timeout is not a reason to drop it.
            raise TransientProviderError(f"Twilio did not answer in time: {exc}", code="timeout") from exc
        except (requests.RequestException, TwilioException) as exc:
            raise TransientProviderError(f"Cannot reach Twilio: {exc}", code="connection") from exc
        return SendResult(
            provider_message_id=sent.sid,
            response={"status": sent.status, "num_segments": sent.num_segments},
            receipt_expected=bool(status_callback),
        )

    def _client_get(self) -> Client:
        if self._client is None:
            client = Client(
                self.account_sid, self.auth_token, http_client=TwilioHttpClient(timeout=self.timeout)
            )
            # The SDK's own knob for the API host (regional endpoints, proxies, the tests' fake):
            # every Messages call is built from the Api domain's base_url.
            client.api.base_url = self.api_base_url.rstrip("/")
            self._client = client
        return self._client

    def _error_for(self, *, status: int, code: int | None, text: str) -> TransientProviderError | PermanentProviderError:
        code = code or status
        message = f"Twilio HTTP {status}, error {code}: {text}"
        response = {"http_status": status, "code": code, "more_info": f"https://www.twilio.com/docs/errors/{code}"}
        if code in TRANSIENT_ERROR_CODES or status == 429 or status >= 500:
            return TransientProviderError(message, code=str(code), response=response)
        if status in CONFIGURATION_HTTP_STATUSES:  # check TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN
            return self.credentials_error(message, code=str(code), response=response)
        return PermanentProviderError(message, code=str(code), response=response)
