"""An in-memory backend for tests and local experiments, like Django's locmem email backend."""

from dataclasses import dataclass
from typing import Any

from apps.channels.base import ChannelBackend, ProviderResult


@dataclass(frozen=True)
class SentMessage:
    delivery_id: str
    channel: str
    content: dict[str, Any]


# Everything "sent" in this process, oldest first.
outbox: list[SentMessage] = []


class OutboxBackend(ChannelBackend):
    def send(self, delivery, content) -> ProviderResult:
        outbox.append(SentMessage(delivery_id=str(delivery.id), channel=delivery.channel, content=content))
        return ProviderResult(provider_message_id=f"outbox-{len(outbox)}")
