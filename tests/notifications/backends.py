"""A channel backend for tests that answers as scripted: a fake provider, plugged in by settings
like any backend (NOTIFIER_CHANNELS[...]["BACKEND"]), for answers the fake servers cannot give."""

from collections import deque
from collections.abc import Callable

from apps.channels.base import ChannelBackend, ChannelMessage, SendResult

# Each send takes the next step: an exception to raise (the provider's answer), or a callable
# run with the message while the provider is "busy" (something else happening meanwhile).
script: deque[BaseException | Callable] = deque()
# Delivery ids the provider accepted, oldest first.
accepted: list[str] = []


class ScriptedBackend(ChannelBackend):
    def send(self, message: ChannelMessage) -> SendResult:
        if script:
            step = script.popleft()
            if isinstance(step, BaseException):
                raise step
            step(message)
        accepted.append(message.delivery_id)
        return SendResult(provider_message_id=f"scripted-{len(accepted)}")


class ConcurrentScriptedBackend(ScriptedBackend):
    """ScriptedBackend whose sends may run on send threads (the channel's SEND_CONCURRENCY)."""

    concurrent_sends = True
