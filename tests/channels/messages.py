"""Messages for backend tests: what the pipeline hands a channel backend, built without any row."""

import uuid

from apps.channels.base import ChannelMessage, PushDevice


def message_for(channel: str, content: dict, **fields) -> ChannelMessage:
    """A message on `channel` with `content` rendered and the addresses in `fields`, for a new delivery."""
    return ChannelMessage(delivery_id=str(uuid.uuid4()), channel=channel, content=content, **fields)


_device_ids = iter(range(1, 10**9))


def push_device(token: str, platform: str = "android") -> PushDevice:
    return PushDevice(id=next(_device_ids), token=token, platform=platform)
