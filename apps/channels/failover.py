"""Provider failover inside a channel: a send tries the channel's providers in order.

A provider is asked only if its circuit lets the send through (circuit.py); a transient failure
counts against its circuit and the send goes to the next provider at once, in the same attempt.
A permanent error (a bad address, a refused message) ends the attempt where it is: the next
provider would refuse it too. When no provider took the message, the attempt fails with the last
transient error (or `circuit_open`, every circuit open), and the delivery is retried with its
usual backoff.

A provider that cannot reach this message's recipient (its `missing_contact_reason`: a partner
service serving one domain) is left out when another can: it is no candidate, so it is neither
asked nor recorded.

A circuit diverts sends only where another provider can take them: a channel with one provider
still tracks its state (metrics, the dashboard) but always asks it, since holding a send back
would only add the cool-down to the delivery's own backoff.

The result or error says which provider answered and which were passed over before it: the
attempt row records both (docs/channels.md, "Provider failover").
"""

import dataclasses

from apps.channels.base import (
    ChannelMessage,
    ContactPoints,
    PassedOver,
    PermanentProviderError,
    ProviderError,
    SendResult,
    TransientProviderError,
)
from apps.channels.registry import Provider, providers_get

CIRCUIT_OPEN = "circuit_open"


def channel_send(channel: str, message: ChannelMessage) -> SendResult:
    """Send `message` through the first of the channel's providers that takes it.

    Raises the last provider's TransientProviderError when none took it, or its
    PermanentProviderError at once; ChannelDisabled if the channel is not enabled.
    """
    providers = _candidates(providers_get(channel), message)
    diverts = len(providers) > 1
    passed_over: list[PassedOver] = []
    actions: list = []  # what failed providers asked for (a device gone) is applied all the same
    last_error: ProviderError | None = None
    for provider in providers:
        if not _allowed(provider) and diverts:
            passed_over.append(PassedOver(provider.name, CIRCUIT_OPEN, "Its circuit is open: not asked."))
            continue
        try:
            result = provider.backend.send(message)
        except TransientProviderError as exc:
            if provider.breaker is not None:
                provider.breaker.failed()
            exc.provider = provider.name
            actions.extend(exc.actions)
            passed_over.append(PassedOver(provider.name, exc.code, exc.message))
            last_error = exc
            continue
        except BaseException as exc:
            # A permanent error is the message's own; anything else (a bug, the task's time limit)
            # says nothing of the provider either: a probe it held is given back.
            if provider.breaker is not None:
                provider.breaker.ended()
            if isinstance(exc, PermanentProviderError):
                _label(exc, provider, passed_over, actions)
            raise
        if provider.breaker is not None:
            provider.breaker.succeeded()
        return dataclasses.replace(result, provider=provider.name, passed_over=tuple(passed_over),
                                   actions=(*actions, *result.actions))
    if last_error is not None:
        last_error.passed_over = tuple(passed_over[:-1])  # the last entry is this error itself
        last_error.actions = tuple(actions)
        raise last_error
    error = TransientProviderError(f"Every provider of the {channel} channel is failing: their circuits are open.",
                                   code=CIRCUIT_OPEN, actions=tuple(actions))
    error.passed_over = tuple(passed_over)
    raise error


def _candidates(providers: tuple[Provider, ...], message: ChannelMessage) -> tuple[Provider, ...]:
    if len(providers) == 1:
        return providers
    contacts = ContactPoints(email=message.email, phone=message.phone, has_active_device=bool(message.devices),
                             webhook_url=message.webhook_url,
                             webhook_secret=message.webhook_secrets[0] if message.webhook_secrets else "")
    reaching = tuple(p for p in providers if not p.backend.missing_contact_reason(contacts))
    # None can: the first one answers with its own error, as a channel of one provider would.
    return reaching or providers[:1]


def _allowed(provider: Provider) -> bool:
    return provider.breaker is None or provider.breaker.allow()


def _label(error: ProviderError, provider: Provider, passed_over: list[PassedOver], actions: list) -> None:
    error.provider = provider.name
    error.passed_over = tuple(passed_over)
    error.actions = (*actions, *error.actions)
