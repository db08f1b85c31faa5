"""Providers' circuit breakers against the run's real Redis, shared by processes (forked here as
Celery's prefork pool forks its children), and per process without Redis."""

import multiprocessing
import threading
import time

import pytest
import redis

from apps.channels.circuit import CircuitBreaker, CircuitState, circuit_states
from apps.core.redis import redis_pause_reset
from tests.support.processes import free_port

THRESHOLD, WINDOW, COOL_DOWN = 3, 5.0, 0.5


@pytest.fixture
def circuit_settings(settings):
    settings.NOTIFIER_CIRCUIT_FAILURE_THRESHOLD = THRESHOLD
    settings.NOTIFIER_CIRCUIT_WINDOW_SECONDS = WINDOW
    settings.NOTIFIER_CIRCUIT_COOL_DOWN_SECONDS = COOL_DOWN
    settings.NOTIFIER_CIRCUIT_STATE_CACHE_SECONDS = 0.0  # every call reads the shared state
    return settings


@pytest.fixture
def shared(circuit_settings, redis_for_run):
    return redis_for_run


def breaker(provider: str = "smtp:primary") -> CircuitBreaker:
    """A provider's circuit as one process sees it: two of them are two processes' views."""
    return CircuitBreaker(channel="email", provider=provider)


def fail(circuit: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert circuit.allow()
        circuit.failed()


def shared_state(circuit: CircuitBreaker) -> CircuitState:
    [state] = circuit_states([circuit.key])
    return state


def test_repeated_failures_within_the_window_open_the_circuit_for_every_process(shared):
    one, other = breaker(), breaker()

    fail(one, THRESHOLD - 1)
    assert other.allow() and shared_state(one) == CircuitState.CLOSED
    fail(other, 1)

    assert shared_state(one) == CircuitState.OPEN
    assert not one.allow() and not other.allow()
    assert breaker("smtp:backup").allow()  # each provider has its own circuit


def test_failures_spread_wider_than_the_window_do_not_open_it(shared):
    shared.NOTIFIER_CIRCUIT_WINDOW_SECONDS = 0.3
    circuit = breaker()

    for _ in range(THRESHOLD + 1):
        fail(circuit, 1)
        time.sleep(0.35)

    assert shared_state(circuit) == CircuitState.CLOSED and circuit.allow()


def test_after_the_cool_down_one_probe_goes_through_and_its_success_closes_the_circuit(shared):
    prober, other = breaker(), breaker()
    fail(prober, THRESHOLD)
    time.sleep(COOL_DOWN + 0.1)

    assert prober.allow()  # the probe
    assert shared_state(prober) == CircuitState.HALF_OPEN
    assert not other.allow()  # everyone else is passed over meanwhile
    prober.succeeded()

    assert shared_state(prober) == CircuitState.CLOSED
    assert other.allow() and other.allow()
    # Closed afresh: the failures that opened it are forgotten.
    fail(other, THRESHOLD - 1)
    assert shared_state(other) == CircuitState.CLOSED


def test_a_failed_probe_opens_the_circuit_for_another_cool_down(shared):
    prober, other = breaker(), breaker()
    fail(prober, THRESHOLD)
    time.sleep(COOL_DOWN + 0.1)

    assert prober.allow()
    prober.failed()

    assert shared_state(prober) == CircuitState.OPEN
    assert not other.allow()
    time.sleep(COOL_DOWN + 0.1)
    assert other.allow()  # the next probe


def test_a_probe_lost_with_its_worker_is_given_back_after_the_send_time_limit(shared):
    shared.NOTIFIER_SEND_TIME_LIMIT_SECONDS = 1
    lost, other = breaker(), breaker()
    fail(lost, THRESHOLD)
    time.sleep(COOL_DOWN + 0.1)
    assert lost.allow()  # ... and its process dies without a word

    assert not other.allow()
    time.sleep(1.1)
    assert other.allow()


def test_a_probe_ending_in_the_messages_own_error_lets_the_next_send_probe_at_once(shared):
    prober, other = breaker(), breaker()
    fail(prober, THRESHOLD)
    time.sleep(COOL_DOWN + 0.1)
    assert prober.allow()

    prober.ended()  # e.g. a bad address: nothing learnt about the provider

    assert other.allow()


def _probe_race(start, answers) -> None:
    circuit = breaker()
    start.wait(timeout=30)
    answers.put(circuit.allow())


def test_across_processes_exactly_one_takes_the_probe(shared):
    fail(breaker(), THRESHOLD)
    time.sleep(COOL_DOWN + 0.1)
    context = multiprocessing.get_context("fork")
    contenders = 8
    start, answers = context.Barrier(contenders), context.Queue()
    processes = [context.Process(target=_probe_race, args=(start, answers)) for _ in range(contenders)]
    for process in processes:
        process.start()

    results = [answers.get(timeout=30) for _ in range(contenders)]
    for process in processes:
        process.join(timeout=30)

    assert sorted(results) == [False] * (contenders - 1) + [True]
    assert shared_state(breaker()) == CircuitState.HALF_OPEN


def test_a_closed_circuit_costs_no_redis_command_per_send(shared):
    """The send path's cost: a process trusts a closed circuit for the cache's time, and a success
    on it writes nothing. Every command on this test's keys is watched with MONITOR."""
    shared.NOTIFIER_CIRCUIT_STATE_CACHE_SECONDS = 5.0
    circuit = breaker()
    commands, stop = [], threading.Event()

    def watch():
        with redis.Redis.from_url(shared.REDIS_URL).monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                if circuit.key in command["command"]:
                    commands.append(command["command"])
                if stop.is_set():
                    return

    ready = threading.Event()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ready.wait(timeout=5)
    for _ in range(200):
        assert circuit.allow()
        circuit.succeeded()
    stop.set()
    redis.Redis.from_url(shared.REDIS_URL).get(circuit.key)  # one more command, so the watcher wakes
    watcher.join(timeout=5)

    assert len([c for c in commands if "EVAL" in c.upper()]) == 1  # the first read; then none


def test_without_redis_each_process_keeps_its_own_circuit(circuit_settings):
    circuit_settings.REDIS_URL = ""
    circuit, other_process = breaker(), breaker()

    fail(circuit, THRESHOLD)

    assert not circuit.allow() and circuit.local_state() == CircuitState.OPEN
    assert other_process.allow()  # nothing shared
    assert circuit_states([circuit.key]) is None  # nothing to read from another process
    time.sleep(COOL_DOWN + 0.1)
    assert circuit.allow()
    circuit.succeeded()
    assert circuit.local_state() == CircuitState.CLOSED


def test_while_redis_does_not_answer_the_process_falls_back_to_its_own_circuit(circuit_settings):
    circuit_settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    redis_pause_reset()
    circuit = breaker()
    try:
        started = time.monotonic()
        fail(circuit, THRESHOLD)
        assert not circuit.allow()
        assert time.monotonic() - started < 2  # a refused Redis costs no send a wait
        assert circuit.local_state() == CircuitState.OPEN
    finally:
        redis_pause_reset()
