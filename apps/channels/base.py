"""The contract between the delivery pipeline and a channel backend.

A backend sends one rendered message for one delivery and either returns a ProviderResult or
raises a ProviderError saying whether trying again can help. It never touches delivery state:
the pipeline records attempts and outcomes.
"""

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apps.notifications.models import Delivery


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
class ProviderResult:
    """What the provider said when it accepted the message."""

    provider_message_id: str = ""
    response: dict[str, Any] = field(default_factory=dict)
    # The provider will call back with a delivery receipt for this message (receipts.py).
    receipt_expected: bool = False

    def __post_init__(self):
        object.__setattr__(self, "provider_message_id", storable(self.provider_message_id))
        object.__setattr__(self, "response", storable(self.response))


class ProviderError(Exception):
    """The provider did not take the message. `code` is the provider's own error code, if any."""

    def __init__(self, message: str, *, code: str = "", response: dict[str, Any] | None = None):
        message = storable(message)
        super().__init__(message)
        self.message = message
        self.code = storable(str(code))
        self.response = storable(response or {})


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

    def __init__(self, **options: Any):
        self.options = options

    def send(self, delivery: "Delivery", content: dict[str, Any]) -> ProviderResult:
        """Send `content` (the template's parts for this channel, rendered) for `delivery`."""
        raise NotImplementedError


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
