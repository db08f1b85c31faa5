"""The contract between the delivery pipeline and a channel backend.

The pipeline builds a ChannelMessage from its rows (the addresses, the rendered content, the
delivery id, what earlier attempts already reached); a backend sends it and either returns a
SendResult or raises a ProviderError saying whether trying again can help. Both may carry
actions (e.g. "deactivate this device") that the pipeline applies through the app owning the
data. A backend knows none of our tables: it never reads or writes delivery, user or inbox rows.

Each backend class also states its channel's facts: the contact it needs
(`missing_contact_reason`), whether the user's quiet hours hold it, and its payload limits.
"""

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any

logger = logging.getLogger(__name__)


def storable(value: Any) -> Any:
    """A provider's answer, fit to store: NUL characters removed from every string inside it.

    Providers and webhook receivers answer what they like, and PostgreSQL refuses NUL in text
    and jsonb: a worker failing to record an answer would leave the delivery `sending` until the
    sweep sends it again. Cleaning at this boundary keeps every backend's answers storable.
    """
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


@dataclass(frozen=True)
class ContactPoints:
    """How a user (and their project) can be reached, as plain values: what a backend's
    `missing_contact_reason` reads to tell whether a delivery could go out at all."""

    email: str = ""
    phone: str = ""
    has_active_device: bool = False
    webhook_url: str = ""
    webhook_secret: str = ""


@dataclass(frozen=True)
class PushDevice:
    id: int
    token: str
    platform: str


@dataclass(frozen=True)
class ChannelMessage:
    """One delivery's message, as a backend sends it: built by the pipeline, never changed after.

    Only the fields of the delivery's channel are filled: `email` (email), `phone` (SMS),
    `devices` and `devices_reached` (push: the user's active devices, and the per-device results
    of earlier attempts that reached a device, by device id), `webhook_url`/`webhook_secrets`
    (webhook: the secrets that sign, the current one first), `recipient_id` (in-app).
    `notification_id`, `template_key`, `user_external_id` and `created_at` describe the
    notification for payloads that carry them (webhooks).
    `headers` are extra headers the pipeline decided the message carries (email: List-Unsubscribe),
    sent as they are.
    """

    delivery_id: str
    channel: str
    content: dict[str, Any]
    project_id: int | None = None
    recipient_id: int | None = None
    email: str = ""
    phone: str = ""
    devices: tuple[PushDevice, ...] = ()
    devices_reached: dict[int, dict] = field(default_factory=dict)
    webhook_url: str = ""
    webhook_secrets: tuple[str, ...] = ()
    notification_id: str = ""
    template_key: str = ""
    user_external_id: str = ""
    created_at: datetime | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class DeactivateDevice:
    """The provider says this device token is gone for good (the app was removed, the token
    rotated): the pipeline deactivates the device so no later push goes to it."""

    device_id: int


# What a backend may ask the pipeline to do with our data, whatever the send's outcome.
Action = DeactivateDevice


@dataclass(frozen=True)
class PassedOver:
    """A provider an attempt went past on its way to the one that answered: it failed for now
    (`error_code` and `error` its answer), or its circuit was open and it was not asked
    (`error_code` "circuit_open")."""

    provider: str
    error_code: str
    error: str

    def as_dict(self) -> dict[str, str]:
        return {"provider": self.provider, "error_code": self.error_code, "error": self.error}


@dataclass(frozen=True)
class SendResult:
    """What the provider said when it accepted the message.

    `response` is kept on the attempt row; where a message has several addresses it says what
    happened to each (push: `{"devices": [...]}`), and a later attempt reads it back.
    """

    provider_message_id: str = ""
    response: dict[str, Any] = field(default_factory=dict)
    # The provider will call back with a delivery receipt for this message (receipts.py).
    receipt_expected: bool = False
    actions: tuple[Action, ...] = ()
    # Filled by the channel's failover (failover.py), not by backends: the provider that took
    # the message, and the ones passed over before it in this attempt (see `PassedOver`).
    provider: str = ""
    passed_over: tuple[PassedOver, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "provider_message_id", storable(self.provider_message_id))
        object.__setattr__(self, "response", storable(self.response))


class ProviderError(Exception):
    """The provider did not take the message. `code` is the provider's own error code, if any.

    `actions` are applied even though the message failed (one device refused for good while
    another could not be reached for now).
    """

    def __init__(self, message: str, *, code: str = "", response: dict[str, Any] | None = None,
                 actions: tuple[Action, ...] = ()):
        message = storable(message)
        super().__init__(message)
        self.message = message
        self.code = storable(str(code))
        self.response = storable(response or {})
        self.actions = tuple(actions)
        # Filled by the channel's failover (failover.py): the provider that gave this answer, and
        # the ones passed over before it in this attempt.
        self.provider = ""
        self.passed_over: tuple[PassedOver, ...] = ()


class TransientProviderError(ProviderError):
    """Trying again later may work: timeouts, connection errors, throttling, 5xx, SMTP 4xx."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after  # the provider's own wait (Retry-After), if it gave one


class PermanentProviderError(ProviderError):
    """Trying again cannot work: invalid address, unsubscribed recipient, SMTP 5xx, bad token."""


class ChannelBackend:
    """Base class for channel backends; configured by NOTIFIER_CHANNELS[channel]["OPTIONS"].

    One instance lives per worker process, so a backend may keep its connection or HTTP session
    between messages (opening one per message costs more than the send).
    """

    channel: str = ""
    # Quiet hours hold the channels that interrupt someone; a backend whose messages wait
    # silently (an inbox) or go to the product rather than the user (webhooks) says False.
    held_by_quiet_hours: bool = True
    # The largest payload the provider takes, in bytes (None: no limit of its own).
    payload_limit_bytes: int | None = None
    # The message goes to the user's devices: the pipeline fills `devices` and `devices_reached`.
    sends_to_devices: bool = False
    # Our own credentials, account or project refused by the provider are transient: retried
    # until the attempts run out, so the deliveries end `dead` and can be replayed from the
    # dead-letter queue once the configuration is fixed, rather than `failed` for a reason that
    # was never the user's.
    credentials_errors_transient: bool = True
    # The provider's name in attempts, metrics and circuit keys (`provider_name`); NAME in the
    # settings overrides it.
    provider: str = ""
    # Whether a circuit breaker watches this provider (circuit.py). A backend whose failures are
    # each recipient's own (webhooks: every project has its own receiver) or our own (the inbox
    # writes to our database) says False: one receiver down must not divert everyone's sends.
    circuit_breaker: bool = True
    # `send` may run on several threads of one process at once (the channel's SEND_CONCURRENCY):
    # the backend keeps a connection per thread, touches no database, and locks what it shares.
    concurrent_sends: bool = False

    def __init__(self, **options: Any):
        self.options = options

    @property
    def provider_name(self) -> str:
        """This instance's provider, as attempts and metrics name it (stable across processes)."""
        return self.provider or type(self).__name__

    def missing_contact_reason(self, contacts: ContactPoints) -> str:
        """Why a message of this backend cannot reach these contact points, or "" if it can.

        A delivery with a reason is `skipped` when the notification is created.
        """
        return ""

    def send(self, message: ChannelMessage) -> SendResult:
        """Send `message` (its `content` is the template's parts for this channel, rendered)."""
        raise NotImplementedError

    def credentials_error(self, message: str, *, code: str, response: dict | None = None) -> ProviderError:
        """The error for a provider refusing our credentials or account (see
        `credentials_errors_transient`), logged since only an operator can fix it."""
        logger.error("%s: the provider refused our credentials or account (%s): %s", type(self).__name__, code, message)
        error_class = TransientProviderError if self.credentials_errors_transient else PermanentProviderError
        return error_class(message, code=code, response=response)


def retry_after_seconds(value: str | None, *, cap: float) -> float | None:
    """A provider's Retry-After header in seconds; None if absent or unreadable.

    HTTP allows a number of seconds or a date. A wait in the past is 0, and any wait is capped:
    past the cap a stuck or hostile provider would park deliveries for good, and a value like
    10**12 seconds would not even fit a datetime (callers pass NOTIFIER_MAX_RETRY_AFTER_SECONDS).
    """
    value = (value or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            return None
        if when.tzinfo is None:  # "-0000": HTTP dates are GMT anyway
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), cap)
