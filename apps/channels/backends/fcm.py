"""Push through Firebase Cloud Messaging (HTTP v1), with the official `firebase-admin` SDK.

A push delivery goes to every active device of the user, one FCM request per device (the SDK's
`send_each`), and SendResult.response records each device's outcome:
`{"devices": [{"device_id", "token_suffix", "platform", "outcome", "message_id" | "error_code"}]}`.
Only the last characters of a token are ever stored or logged.

Outcomes, per device: `sent`; `unregistered` (FCM's UNREGISTERED: the app is gone or the token
rotated; the result asks the pipeline to deactivate the device, and the others are unaffected);
`permanent_error` (INVALID_ARGUMENT, SENDER_ID_MISMATCH, ...); `transient_error` (UNAVAILABLE,
INTERNAL, QUOTA_EXCEEDED with its Retry-After, timeouts, and our own credential or project
problems: credentials errors, transient like every backend's). For the delivery:

- a device failed transiently → TransientProviderError, even if others got the message. The
  retry sends only to the devices no earlier attempt reached: each attempt's per-device
  outcomes are kept with the attempt, and the pipeline hands the next attempt those that
  reached a device (ChannelMessage.devices_reached). So a
  retry never pushes twice to one phone, and a phone that was briefly unreachable still gets it.
  (The price: when the attempts run out, the delivery reads `dead` though some devices got it;
  its attempts say which.)
- otherwise sent if any device (now or in an earlier attempt) accepted it;
- otherwise PermanentProviderError (the devices' common error code, else `all_devices_failed`).

Retries: firebase-admin retries 500/503 four times with backoff, and 429/503 with Retry-After,
inside the call (urllib3 Retry), sleeping in the worker and invisible in the attempt log. That
is switched off here (only a refused connection is retried, when nothing was sent) so that one
attempt row is one request and the pipeline's bounded, jittered backoff is the only retry policy.
"""

import json
import logging
import uuid
import warnings
from pathlib import Path

import firebase_admin
import google.auth.exceptions
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from firebase_admin import credentials, exceptions, messaging
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from apps.channels.base import (
    ChannelBackend,
    ChannelMessage,
    ContactPoints,
    DeactivateDevice,
    PermanentProviderError,
    PushDevice,
    SendResult,
    TransientProviderError,
    retry_after_seconds,
)

logger = logging.getLogger(__name__)

# FCM refuses a message whose payload (notification + data) is larger than this.
PAYLOAD_LIMIT_BYTES = 4096
# send_each takes at most this many messages.
_BATCH_SIZE = 500

# FCM's own error codes, from the SDK's exception classes; other errors carry the canonical code.
_FCM_ERROR_CODES = {
    messaging.UnregisteredError: "UNREGISTERED",
    messaging.SenderIdMismatchError: "SENDER_ID_MISMATCH",
    messaging.QuotaExceededError: "QUOTA_EXCEEDED",
    messaging.ThirdPartyAuthError: "THIRD_PARTY_AUTH_ERROR",
}
# Worth trying again. Anything not named here or below is permanent.
_TRANSIENT_CODES = frozenset({
    "UNAVAILABLE", "INTERNAL", "QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "UNKNOWN",
})
# Our configuration (credentials, project, APNs key): credentials errors (ChannelBackend).
_CREDENTIALS_CODES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED", "THIRD_PARTY_AUTH_ERROR"})

# A refused connection is retried once (the request never left); nothing else: no status
# retries, no Retry-After sleeps, and no resending a POST whose answer was lost.
_NO_SDK_RETRIES = Retry(total=1, connect=1, read=False, status=0, other=0, respect_retry_after_header=False)


class _MessagingService(messaging._MessagingService):
    """firebase-admin's FCM client, sending to a configurable base URL and without its own retries.

    The SDK has no public way to change the FCM host: `_MessagingService.__init__` builds the
    instance attribute `_fcm_url` from the class attribute FCM_URL, named through the base class
    (so overriding FCM_URL in a subclass does nothing). Setting `_fcm_url` on our own instance is
    the narrowest override: it touches no global state (patching FCM_URL would redirect every
    Firebase app in the process) and fails loudly here if an SDK upgrade renames it.
    """

    def __init__(self, app: firebase_admin.App, *, base_url: str):
        super().__init__(app)
        if not hasattr(self, "_fcm_url"):
            raise ImproperlyConfigured(
                f"firebase-admin {firebase_admin.__version__} no longer has _MessagingService._fcm_url; "
                "FCM_API_BASE_URL cannot be applied (see apps/channels/backends/fcm.py)."
            )
        base_url = base_url.rstrip("/")
        self._fcm_url = f"{base_url}/v1/projects/{self._project_id}/messages:send"
        # The longest mounted prefix wins, so this replaces the SDK's retrying adapters for FCM.
        self._client.session.mount(f"{base_url}/", HTTPAdapter(pool_maxsize=32, max_retries=_NO_SDK_RETRIES))


class FcmPushBackend(ChannelBackend):
    """Sends the rendered `title`, `body` and `data` to each active device of the user.

    OPTIONS: `credentials_file` (default FCM_CREDENTIALS_FILE: a service-account JSON, whose
    `token_uri` is honoured), `api_base_url` (default FCM_API_BASE_URL), `timeout` in seconds
    for each HTTP call (default 10).

    One Firebase app, OAuth token and pooled HTTP session serve every message of the process,
    created at the first send.
    """

    channel = "push"
    provider = "fcm"
    payload_limit_bytes = PAYLOAD_LIMIT_BYTES
    sends_to_devices = True

    def __init__(self, *, credentials_file: str = "", api_base_url: str = "", timeout: float = 10.0, **options):
        super().__init__(**options)
        self.credentials_file = credentials_file or settings.FCM_CREDENTIALS_FILE
        self.api_base_url = api_base_url or settings.FCM_API_BASE_URL
        self.timeout = timeout
        self._app: firebase_admin.App | None = None
        self._service: _MessagingService | None = None

    def configuration_errors(self) -> list[str]:
        """What is missing for this backend to send at all (reported by the system checks)."""
        if not self.credentials_file:
            return ["FCM_CREDENTIALS_FILE is not set."]
        try:
            info = json.loads(Path(self.credentials_file).read_text())
        except (OSError, ValueError) as exc:
            return [f"FCM_CREDENTIALS_FILE {self.credentials_file!r} is not a readable JSON file ({exc})."]
        if not isinstance(info, dict) or info.get("type") != "service_account" or not info.get("project_id"):
            return [f"FCM_CREDENTIALS_FILE {self.credentials_file!r} is not a service-account key with a project_id."]
        return []

    def missing_contact_reason(self, contacts: ContactPoints) -> str:
        return "" if contacts.has_active_device else "the user has no active device for push"

    def send(self, message: ChannelMessage) -> SendResult:
        content = message.content
        notification = messaging.Notification(title=str(content["title"]), body=str(content["body"]))
        data = {str(key): str(value) for key, value in (content.get("data") or {}).items()}
        _payload_size_check(notification, data)

        sent_before = {device_id: {**result, "earlier_attempt": True}
                       for device_id, result in message.devices_reached.items()}
        devices = [d for d in message.devices if d.id not in sent_before]
        if not devices and not sent_before:
            raise PermanentProviderError("The user has no active device.", code="no_active_device")

        results = []
        for start in range(0, len(devices), _BATCH_SIZE):
            results += self._send_batch(devices[start:start + _BATCH_SIZE], notification, data)
        for result in results:
            logger.info("push delivery %s: device …%s %s %s", message.delivery_id, result["token_suffix"],
                        result["outcome"], result.get("error_code", "—"))
        return _outcome([*sent_before.values(), *results])

    def close(self) -> None:
        """Release the Firebase app and its connections (tests; a process that switches settings)."""
        if self._app is not None:
            self._service.close()
            firebase_admin.delete_app(self._app)
        self._app = self._service = None

    def _send_batch(self, devices: list[PushDevice], notification, data) -> list[dict]:
        messages = [_message(device.token, notification, data) for device in devices]
        try:
            responses = self._service_get().send_each(messages)
        except (exceptions.FirebaseError, google.auth.exceptions.GoogleAuthError) as exc:
            # The whole batch failed before FCM answered (e.g. no OAuth token): every device of it.
            return [_result(device, self._error_outcome(exc)) for device in devices]
        return [
            _result(device, {"outcome": "sent", "message_id": response.message_id}) if response.success
            else _result(device, self._error_outcome(response.exception))
            for device, response in zip(devices, responses.responses, strict=True)
        ]

    def _service_get(self) -> _MessagingService:
        if self._service is None:
            try:
                credential = credentials.Certificate(self.credentials_file)
            except (OSError, ValueError) as exc:
                raise ImproperlyConfigured(f"FCM_CREDENTIALS_FILE cannot be used: {exc}") from exc
            # A named app of our own, so no other Firebase use in the process is affected.
            app = firebase_admin.initialize_app(
                credential, {"httpTimeout": self.timeout}, name=f"notifier-push-{uuid.uuid4().hex[:8]}"
            )
            self._service = _MessagingService(app, base_url=self.api_base_url)
            self._app = app
        return self._service

    def _error_outcome(self, exc: Exception) -> dict:
        code = _error_code(exc)
        outcome = {"error_code": code, "error": str(exc)[:500]}
        if code == "UNREGISTERED":
            return {"outcome": "unregistered", **outcome}
        if code in _CREDENTIALS_CODES:
            error = self.credentials_error(outcome["error"], code=code)
            if isinstance(error, TransientProviderError):
                return {"outcome": "transient_error", "retry_after": _retry_after(exc), **outcome}
            return {"outcome": "permanent_error", **outcome}
        if code in _TRANSIENT_CODES:
            return {"outcome": "transient_error", "retry_after": _retry_after(exc), **outcome}
        return {"outcome": "permanent_error", **outcome}


def _message(token: str, notification: messaging.Notification, data: dict[str, str]) -> messaging.Message:
    # firebase-admin 7.x warns that Message.token is deprecated in favour of `fid`. They are
    # different identifiers: `fid` is a Firebase installation ID, while apps register FCM
    # registration tokens (getToken()), which FCM v1 still takes as `message.token` and which
    # 7.7 still sends as such. Sending a token as `fid` would address no app, so `token` stays
    # and only this warning is silenced. (catch_warnings changes process-wide filters for a
    # moment: fine in a prefork worker, where one thread builds messages.)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Message\.token is deprecated", category=DeprecationWarning)
        return messaging.Message(token=token, notification=notification, data=data or None)


def _payload_size_check(notification: messaging.Notification, data: dict[str, str]) -> None:
    payload = {"notification": {"title": notification.title, "body": notification.body}, "data": data}
    size = len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
    if size > PAYLOAD_LIMIT_BYTES:
        raise PermanentProviderError(
            f"The push payload is {size} bytes; FCM takes at most {PAYLOAD_LIMIT_BYTES}.",
            code="payload_too_large", response={"payload_bytes": size, "limit_bytes": PAYLOAD_LIMIT_BYTES},
        )


def _result(device: PushDevice, outcome: dict) -> dict:
    return {"device_id": device.id, "token_suffix": device.token[-6:], "platform": device.platform, **outcome}


def _error_code(exc: Exception) -> str:
    for error_class, code in _FCM_ERROR_CODES.items():
        if isinstance(exc, error_class):
            return code
    if isinstance(exc, exceptions.FirebaseError):
        return exc.code
    return "UNKNOWN"  # google-auth failing to get a token: a network or credential problem


def _retry_after(exc: Exception) -> float | None:
    """FCM's Retry-After (seconds or an HTTP date), if the error came with one."""
    response = getattr(exc, "http_response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    return retry_after_seconds(value, cap=settings.NOTIFIER_MAX_RETRY_AFTER_SECONDS)


def _outcome(results: list[dict]) -> SendResult:
    response = {"devices": results}
    actions = tuple(DeactivateDevice(device_id=r["device_id"]) for r in results if r["outcome"] == "unregistered")
    transient = [r for r in results if r["outcome"] == "transient_error"]
    if transient:
        waits = [r["retry_after"] for r in transient if r.get("retry_after") is not None]
        raise TransientProviderError(
            f"{len(transient)} of {len(results)} devices could not be reached for now: {transient[0]['error']}",
            code=transient[0]["error_code"], retry_after=max(waits) if waits else None, response=response,
            actions=actions,
        )
    sent = [r for r in results if r["outcome"] == "sent"]
    if sent:
        return SendResult(provider_message_id=sent[0]["message_id"], response=response, actions=actions)
    codes = {r["error_code"] for r in results}
    raise PermanentProviderError(
        f"No device of the user accepted the push: {results[0]['error']}",
        code=codes.pop() if len(codes) == 1 else "all_devices_failed", response=response, actions=actions,
    )
