"""The providers' circuits as operators see them: the /metrics gauge and the dashboard's table.

Read at scrape (or page) time from Redis, one pipelined round trip for every circuit: the shared
state is the truth. Without Redis each worker keeps its own circuits, which the web process
cannot read: the gauge is then left out and the dashboard says why.
"""

from dataclasses import dataclass

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily

from apps.channels.circuit import STATE_GAUGE_VALUES, CircuitState, circuit_states
from apps.channels.registry import Provider, providers_get


@dataclass(frozen=True)
class ProviderCircuit:
    channel: str
    provider: str
    state: CircuitState

    @property
    def label(self) -> str:
        return self.state.replace("_", "-")


def provider_circuits() -> list[ProviderCircuit] | None:
    """Every enabled channel's providers that have a circuit, with its state; None when the
    states cannot be read (no REDIS_URL, or Redis does not answer)."""
    providers: list[Provider] = [
        provider for channel in settings.NOTIFIER_CHANNELS for provider in providers_get(channel)
        if provider.breaker is not None
    ]
    states = circuit_states([provider.breaker.key for provider in providers])
    if states is None:
        return None
    return [ProviderCircuit(p.channel, p.name, state) for p, state in zip(providers, states, strict=True)]


class CircuitStateCollector:
    """`notifier_provider_circuit_state{channel,provider}`: 0 closed, 1 half-open, 2 open."""

    def collect(self):
        circuits = provider_circuits()
        if circuits is None:
            return
        gauge = GaugeMetricFamily("notifier_provider_circuit_state", "Each provider's circuit breaker: 0 closed, "
                                  "1 half-open (a probe is out), 2 open (sends go to the next provider).",
                                  labels=["channel", "provider"])
        for circuit in circuits:
            gauge.add_metric([circuit.channel, circuit.provider], STATE_GAUGE_VALUES[circuit.state])
        yield gauge
