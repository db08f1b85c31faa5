"""A channel backend for tests that answers as scripted: a fake provider, plugged in by settings
like any backend (NOTIFIER_CHANNELS[...]["BACKEND"]), for answers the fake servers cannot give."""

from collections import deque
from collections.abc import Callable

from apps.channels.base import ChannelBackend, ProviderResult

# Each send takes the next step: an exception to raise (the provider's answer), or a callable
# run with the delivery while the provider is "busy" (something else happening meanwhile).
script: deque[BaseException | Callable] = deque()
# Delivery ids the provider accepted, oldest first.
accepted: list[str] = []


class ScriptedBackend(ChannelBackend):
    def send(self, delivery, content) -> ProviderResult:
        if script:
            step = script.popleft()
            if isinstance(step, BaseException):
                raise step
            step(delivery)
        accepted.append(str(delivery.id))
        return ProviderResult(provider_message_id=f"scripted-{len(accepted)}")
