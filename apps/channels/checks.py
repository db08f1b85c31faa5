"""System checks: a misconfigured channel fails at startup (`manage.py check`), not at the first send."""

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.utils.module_loading import import_string

from apps.channels.base import ChannelBackend
from apps.channels.registry import backend_configs


@register()
def channel_backends_check(app_configs, **kwargs) -> list[Error]:
    errors = []
    for channel, config in settings.NOTIFIER_CHANNELS.items():
        if channel not in settings.NOTIFICATION_CHANNELS:
            errors.append(Error(f"Unknown channel {channel!r} in NOTIFIER_CHANNELS.", id="notifier.E001"))
            continue
        try:
            backends = backend_configs(config)
        except KeyError as exc:
            errors.append(Error(f"Channel {channel!r}: no BACKEND or BACKENDS ({exc}).", id="notifier.E002"))
            continue
        for backend in backends:
            try:
                backend_class = import_string(backend["BACKEND"])
            except (ImportError, KeyError) as exc:
                errors.append(Error(f"Channel {channel!r}: cannot import its BACKEND ({exc}).", id="notifier.E002"))
                continue
            if not issubclass(backend_class, ChannelBackend):
                errors.append(Error(f"Channel {channel!r}: {backend['BACKEND']} is not a ChannelBackend.",
                                    id="notifier.E003"))
    return errors


@register()
def channel_configuration_check(app_configs, **kwargs) -> list[CheckMessage]:
    """An enabled channel whose backend needs settings (credentials) says what is wrong.

    Backends that need some define `configuration_errors()` and may define
    `configuration_warnings()`, each returning messages; building a backend reads settings only
    (no network), so this is cheap.
    """
    messages: list[CheckMessage] = []
    for channel, config in settings.NOTIFIER_CHANNELS.items():
        try:
            backends = [(import_string(b["BACKEND"]), b.get("OPTIONS", {})) for b in backend_configs(config)]
        except (ImportError, KeyError):
            continue  # reported by channel_backends_check
        for backend_class, options in backends:
            if not hasattr(backend_class, "configuration_errors"):
                continue
            backend = backend_class(**options)
            for problem in backend.configuration_errors():
                messages.append(Error(f"Channel {channel!r}: {problem}", id="notifier.E010"))
            for problem in getattr(backend, "configuration_warnings", list)():
                messages.append(Warning(f"Channel {channel!r}: {problem}", id="notifier.W010"))
    return messages
