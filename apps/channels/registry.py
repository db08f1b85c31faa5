"""Channel backends chosen by dotted path from settings.NOTIFIER_CHANNELS, one instance per process."""

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from apps.channels.base import ChannelBackend


class ChannelDisabled(Exception):
    """The channel is not in settings.NOTIFIER_CHANNELS on this server.

    SMS and push are enabled only when their credentials are configured, so a delivery created
    while a channel was enabled can outlive it. Such a delivery cannot be sent here, but nothing
    is wrong with it either: it ends `dead` (code `channel_disabled`), to be replayed once the
    channel is configured again.
    """

    code = "channel_disabled"

    def __init__(self, channel: str):
        self.channel = channel
        self.message = (
            f"The {channel} channel is not enabled on this server (NOTIFIER_CHANNELS); "
            "replay the delivery once it is configured."
        )
        super().__init__(self.message)


def channel_names() -> list[str]:
    """The channels this installation can send on, in the order settings name them."""
    return list(settings.NOTIFIER_CHANNELS)


def channel_enabled(channel: str) -> bool:
    return channel in settings.NOTIFIER_CHANNELS


def _channel_config(channel: str) -> dict:
    try:
        return settings.NOTIFIER_CHANNELS[channel]
    except KeyError:
        raise ChannelDisabled(channel) from None


@cache
def backend_get(channel: str) -> ChannelBackend:
    """The process's backend instance for the channel; raises ChannelDisabled if it is not enabled."""
    config = _channel_config(channel)
    backend_class = import_string(config["BACKEND"])
    return backend_class(**config.get("OPTIONS", {}))


def max_attempts(channel: str) -> int:
    """Attempts a delivery on the channel may make; raises ChannelDisabled if it is not enabled."""
    return _channel_config(channel).get("MAX_ATTEMPTS", 8)


def batch_size(channel: str) -> int:
    """Deliveries of the channel one task may send together (1: one per task).

    A channel not enabled here sends one per task: its messages are dead-lettered one by one.
    """
    return settings.NOTIFIER_CHANNELS.get(channel, {}).get("BATCH_SIZE", 1)


def backends_reset() -> None:
    """Forget the backend instances (settings changed, or a test wants fresh connections)."""
    backend_get.cache_clear()
