"""An in-memory backend for tests and local experiments, like Django's locmem email backend."""

from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string

from apps.channels.base import ChannelBackend, ChannelMessage, ContactPoints, SendResult


@dataclass(frozen=True)
class SentMessage:
    delivery_id: str
    channel: str
    content: dict[str, Any]


# Everything "sent" in this process, oldest first.
outbox: list[SentMessage] = []


class OutboxBackend(ChannelBackend):
    """Keeps each message in `outbox` instead of sending it.

    OPTIONS: `like`, a backend's dotted path: the outbox stands in for that backend and takes its
    channel facts (the contact it needs, whether quiet hours hold it). Without it, it needs no
    contact and quiet hours hold it.
    """

    provider = "outbox"

    def __init__(self, *, like: str = "", **options):
        super().__init__(**options)
        self._like: ChannelBackend | None = import_string(like)() if like else None
        if self._like is not None:
            self.held_by_quiet_hours = self._like.held_by_quiet_hours
            self.sends_to_devices = self._like.sends_to_devices

    def missing_contact_reason(self, contacts: ContactPoints) -> str:
        return self._like.missing_contact_reason(contacts) if self._like is not None else ""

    def send(self, message: ChannelMessage) -> SendResult:
        outbox.append(SentMessage(delivery_id=message.delivery_id, channel=message.channel, content=message.content))
        return SendResult(provider_message_id=f"outbox-{len(outbox)}")
