"""Channel backends chosen by dotted path from settings.NOTIFIER_CHANNELS, one instance per process."""

from dataclasses import dataclass
from functools import cache
from typing import TypeVar

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from apps.channels.base import ChannelBackend, ContactPoints
from apps.channels.circuit import CircuitBreaker

B = TypeVar("B", bound=ChannelBackend)


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


def backend_configs(config: dict) -> list[dict]:
    """A channel's backends, in order, each `{"BACKEND": dotted path, "OPTIONS": {...}}`.

    A channel names one backend (`BACKEND`, `OPTIONS`) or several (`BACKENDS`: a list of such
    dicts, the first one preferred: the order the provider failover follows). Each may carry a
    `NAME`, the provider's name in attempts and metrics (default: the backend's `provider_name`).
    """
    if "BACKENDS" in config:
        return list(config["BACKENDS"])
    return [{"BACKEND": config["BACKEND"], "OPTIONS": config.get("OPTIONS", {})}]


@cache
def backends_get(channel: str) -> tuple[ChannelBackend, ...]:
    """The process's backend instances for the channel, in order; raises ChannelDisabled if it is not enabled."""
    return tuple(
        import_string(backend["BACKEND"])(**backend.get("OPTIONS", {}))
        for backend in backend_configs(_channel_config(channel))
    )


@dataclass(frozen=True)
class Provider:
    """One of a channel's backends as the failover uses it: its name, and its circuit breaker
    (None for a backend that has none: see ChannelBackend.circuit_breaker)."""

    channel: str
    name: str
    backend: ChannelBackend
    breaker: CircuitBreaker | None


@cache
def providers_get(channel: str) -> tuple[Provider, ...]:
    """The channel's providers in the order a send tries them; raises ChannelDisabled if it is not enabled."""
    configs = backend_configs(_channel_config(channel))
    providers, names = [], set()
    for config, backend in zip(configs, backends_get(channel), strict=True):
        name = base = config.get("NAME") or backend.provider_name
        n = 1
        while name in names:  # two providers alike (the same server twice): still two circuits
            n += 1
            name = f"{base}#{n}"
        names.add(name)
        breaker = CircuitBreaker(channel=channel, provider=name) if backend.circuit_breaker else None
        providers.append(Provider(channel=channel, name=name, backend=backend, breaker=breaker))
    return tuple(providers)


def backend_get(channel: str) -> ChannelBackend:
    """The backend that sends the channel's messages: the first of its backends."""
    return backends_get(channel)[0]


def backend_find(channel: str, backend_class: type[B]) -> B | None:
    """The channel's backend of this class (a provider's callback needs its own), or None."""
    if not channel_enabled(channel):
        return None
    return next((backend for backend in backends_get(channel) if isinstance(backend, backend_class)), None)


def channel_missing_contact_reason(*, channel: str, contacts: ContactPoints) -> str:
    """Why no backend of the channel can reach these contact points (the first one's reason),
    or "" if one can; raises ChannelDisabled if the channel is not enabled."""
    reasons = [backend.missing_contact_reason(contacts) for backend in backends_get(channel)]
    return "" if not all(reasons) else reasons[0]


def channel_held_by_quiet_hours(channel: str) -> bool:
    """Whether the user's quiet hours hold the channel's deliveries (its backend says)."""
    return backend_get(channel).held_by_quiet_hours


def max_attempts(channel: str) -> int:
    """Attempts a delivery on the channel may make; raises ChannelDisabled if it is not enabled."""
    return _channel_config(channel).get("MAX_ATTEMPTS", 8)


def batch_size(channel: str) -> int:
    """Deliveries of the channel one task may send together (1: one per task).

    A channel not enabled here sends one per task: its messages are dead-lettered one by one.
    """
    return settings.NOTIFIER_CHANNELS.get(channel, {}).get("BATCH_SIZE", 1)


def send_concurrency(channel: str) -> int:
    """Provider calls of one batch of the channel a worker process keeps in flight at once
    (SEND_CONCURRENCY, default 1: one after the other). More than 1 only where every backend of
    the channel allows it (`ChannelBackend.concurrent_sends`); the calls then run on threads of
    their own (apps/notifications/delivery/send_pool.py)."""
    config = settings.NOTIFIER_CHANNELS.get(channel, {})
    wanted = max(int(config.get("SEND_CONCURRENCY", 1)), 1)
    if wanted == 1 or not all(backend.concurrent_sends for backend in backends_get(channel)):
        return 1
    return wanted


def backends_reset() -> None:
    """Forget the backend instances and this process's circuits (settings changed, or a test
    wants fresh connections)."""
    backends_get.cache_clear()
    providers_get.cache_clear()


@receiver(setting_changed)
def _backends_reset_on_change(*, setting, **kwargs) -> None:
    # Tests (override_settings) choose other backends: the instances built for the old ones go.
    if setting == "NOTIFIER_CHANNELS":
        backends_reset()
