"""A circuit breaker per provider: a provider that keeps failing is passed over for a while.

States (docs/operations.md, "Provider failover"):
- closed: sends go to the provider. A transient failure (connection refused, timeout, SMTP 4xx,
  HTTP 5xx or 429) is counted; NOTIFIER_CIRCUIT_FAILURE_THRESHOLD of them within
  NOTIFIER_CIRCUIT_WINDOW_SECONDS open the circuit.
- open: sends go to the channel's next provider at once. After NOTIFIER_CIRCUIT_COOL_DOWN_SECONDS
  the next send takes the probe and the circuit is half-open.
- half-open: one send, the probe, goes to the provider; every other send is passed over. The
  probe's success closes the circuit, its failure opens it for another cool-down. A probe lost
  with its worker is given back after NOTIFIER_SEND_TIME_LIMIT_SECONDS.

With REDIS_URL the state is shared by every process: each transition is one Lua script, so two
processes can never both take the probe. Without Redis (or while it fails) each process keeps
its own, in memory.

The send path stays cheap: a process trusts a closed circuit it read for
NOTIFIER_CIRCUIT_STATE_CACHE_SECONDS and an open one until its cool-down ends, so a closed circuit
costs one Redis round trip per provider per that many seconds, not one per send; a success on a
closed circuit writes nothing, and only failures and transitions go to Redis.
"""

import logging
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings

from apps.core.redis import RedisUnavailable, redis_run

logger = logging.getLogger(__name__)


class CircuitState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


# The /metrics gauge's values (notifier_provider_circuit_state).
STATE_GAUGE_VALUES = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}
# What asking for a send returns besides a state: this send is the half-open circuit's probe.
PROBE = "probe"


@dataclass(frozen=True)
class Verdict:
    """The answer of the store: the circuit's state, or PROBE (this send is the probe), and for
    how many seconds that stays true (an open circuit's cool-down left, a probe's lease left)."""

    state: str
    seconds_left: float = 0.0


@dataclass(frozen=True)
class CircuitParameters:
    threshold: int
    window: float
    cool_down: float
    probe_lease: float

    @classmethod
    def from_settings(cls) -> "CircuitParameters":
        return cls(threshold=max(settings.NOTIFIER_CIRCUIT_FAILURE_THRESHOLD, 1),
                   window=settings.NOTIFIER_CIRCUIT_WINDOW_SECONDS,
                   cool_down=settings.NOTIFIER_CIRCUIT_COOL_DOWN_SECONDS,
                   probe_lease=float(settings.NOTIFIER_SEND_TIME_LIMIT_SECONDS))


# --- Redis: each transition one script, timed by Redis's clock (the processes' clocks may differ) ---
# KEYS[1] the circuit's hash {state, until}: `until` is the end of an open circuit's cool-down,
# or of a half-open circuit's probe lease, in ms. KEYS[2] the sorted set of recent failures.
# replicate_commands: Redis before 5 refuses writes after TIME in a script without it (a no-op since).
_NOW = ("redis.replicate_commands()\n"
        "local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)\n")
_OPEN = ("redis.call('HSET', KEYS[1], 'state', 'open', 'until', now + cool_down)\n"
         "redis.call('DEL', KEYS[2])\n"
         "return {'open', cool_down}\n")

_ACQUIRE = _NOW + """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return {'closed', 0} end
local left = tonumber(redis.call('HGET', KEYS[1], 'until') or '0') - now
if left > 0 then return {state, left} end
local lease = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'half_open', 'until', now + lease)
return {'probe', lease}
"""
_FAILURE = _NOW + """
local cool_down = tonumber(ARGV[3])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'open' then
  return {'open', tonumber(redis.call('HGET', KEYS[1], 'until') or '0') - now}
end
if state == 'closed' then
  local window = tonumber(ARGV[2])
  redis.call('ZADD', KEYS[2], now, now .. ':' .. ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  redis.call('PEXPIRE', KEYS[2], window)
  if redis.call('ZCARD', KEYS[2]) < tonumber(ARGV[1]) then return {'closed', 0} end
end
""" + _OPEN
_SUCCESS = _NOW + """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'half_open' then redis.call('DEL', KEYS[1], KEYS[2]); return {'closed', 0} end
return {state, tonumber(redis.call('HGET', KEYS[1], 'until') or '0') - now}
"""
# A probe that ended without the provider's verdict (a permanent error of the message's own)
# gives the probe back: the next send probes at once.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'state') == 'half_open' then redis.call('HSET', KEYS[1], 'until', 0) end
return 1
"""


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)


class _RedisStore:
    def __init__(self, key: str):
        self.keys = [key, f"{key}:failures"]

    def _run(self, script: str, *args) -> Verdict:
        def run(client):
            return client.eval(script, 2, *self.keys, *args)

        answer = redis_run(run)
        if not isinstance(answer, list):
            return Verdict(CircuitState.CLOSED)
        state = answer[0].decode() if isinstance(answer[0], bytes) else str(answer[0])
        return Verdict(state, max(int(answer[1]), 0) / 1000)

    def acquire(self, parameters: CircuitParameters) -> Verdict:
        return self._run(_ACQUIRE, _ms(parameters.probe_lease))

    def failure(self, parameters: CircuitParameters) -> Verdict:
        return self._run(_FAILURE, parameters.threshold, _ms(parameters.window), _ms(parameters.cool_down),
                         f"{time.monotonic_ns()}:{threading.get_ident()}")

    def success(self) -> Verdict:
        return self._run(_SUCCESS)

    def release(self) -> None:
        redis_run(lambda client: client.eval(_RELEASE, 2, *self.keys))


class _LocalStore:
    """The same transitions in this process's memory: without Redis, or while it fails."""

    def __init__(self):
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._until = 0.0
        self._failures: list[float] = []

    def _open(self, now: float, parameters: CircuitParameters) -> Verdict:
        self._state, self._until, self._failures = CircuitState.OPEN, now + parameters.cool_down, []
        return Verdict(CircuitState.OPEN, parameters.cool_down)

    def acquire(self, parameters: CircuitParameters) -> Verdict:
        with self._lock:
            now = time.monotonic()
            if self._state == CircuitState.CLOSED:
                return Verdict(CircuitState.CLOSED)
            if self._until > now:
                return Verdict(self._state, self._until - now)
            self._state, self._until = CircuitState.HALF_OPEN, now + parameters.probe_lease
            return Verdict(PROBE, parameters.probe_lease)

    def failure(self, parameters: CircuitParameters) -> Verdict:
        with self._lock:
            now = time.monotonic()
            if self._state == CircuitState.OPEN:
                return Verdict(CircuitState.OPEN, max(self._until - now, 0.0))
            if self._state == CircuitState.CLOSED:
                self._failures = [at for at in self._failures if at > now - parameters.window] + [now]
                if len(self._failures) < parameters.threshold:
                    return Verdict(CircuitState.CLOSED)
            return self._open(now, parameters)

    def success(self) -> Verdict:
        with self._lock:
            if self._state == CircuitState.HALF_OPEN:
                self._state, self._until, self._failures = CircuitState.CLOSED, 0.0, []
            return Verdict(self._state, max(self._until - time.monotonic(), 0.0))

    def release(self) -> None:
        with self._lock:
            if self._state == CircuitState.HALF_OPEN:
                self._until = 0.0

    def state(self) -> CircuitState:
        return self._state


class CircuitBreaker:
    """One provider's circuit, as this process sees it. `allow()` before a send; then exactly one
    of `failed()` (a transient failure), `succeeded()` or `ended()` (neither: a permanent error)."""

    def __init__(self, *, channel: str, provider: str):
        self.channel, self.provider = channel, provider
        self.key = circuit_key(channel, provider)
        self._local = _LocalStore()
        # This process's last view: the state, and the time.monotonic() until which it holds.
        self._known, self._known_until = CircuitState.CLOSED, 0.0
        self._probing = threading.local()

    def allow(self) -> bool:
        """Whether this send may go to the provider (closed, or this send is the probe)."""
        self._probing.active = False
        now = time.monotonic()
        if now < self._known_until:
            return self._known == CircuitState.CLOSED
        verdict = self._call("acquire", CircuitParameters.from_settings())
        if verdict.state == PROBE:
            self._probing.active = True
            logger.info("circuit of %s %s half-open: this send is the probe", self.channel, self.provider)
            self._remember(CircuitState.HALF_OPEN, verdict.seconds_left)
            return True
        self._remember(verdict.state, verdict.seconds_left)
        return verdict.state == CircuitState.CLOSED

    def failed(self) -> None:
        verdict = self._call("failure", CircuitParameters.from_settings())
        if verdict.state == CircuitState.OPEN and self._known != CircuitState.OPEN:
            logger.warning("circuit of %s %s open for %g s: its sends go to the next provider", self.channel,
                           self.provider, verdict.seconds_left)
        self._remember(verdict.state, verdict.seconds_left)
        self._probing.active = False

    def succeeded(self) -> None:
        # Only a probe's success, or one while the circuit is half-open, can close it: a success
        # on a closed circuit (the hot path), or on an open one that a channel of one provider
        # asked anyway, writes nothing.
        if self._known != CircuitState.HALF_OPEN and not getattr(self._probing, "active", False):
            return
        verdict = self._call("success")
        if verdict.state == CircuitState.CLOSED and self._known != CircuitState.CLOSED:
            logger.info("circuit of %s %s closed: the provider answered", self.channel, self.provider)
        self._remember(verdict.state, verdict.seconds_left)
        self._probing.active = False

    def ended(self) -> None:
        if getattr(self._probing, "active", False):
            self._call("release")
            self._known_until = 0.0  # ask again next time
        self._probing.active = False

    def _remember(self, state: str, seconds_left: float) -> None:
        # An open circuit cannot change before its cool-down ends: trusted until then. A closed
        # one, or a half-open one (its probe may succeed any moment), for the cache's time.
        hold = seconds_left if state == CircuitState.OPEN else settings.NOTIFIER_CIRCUIT_STATE_CACHE_SECONDS
        self._known, self._known_until = CircuitState(state), time.monotonic() + hold

    def _call(self, operation: str, *args):
        if settings.REDIS_URL:
            try:
                return getattr(_RedisStore(self.key), operation)(*args)
            except RedisUnavailable:
                pass  # this process's own circuit stands in until Redis answers again
        return getattr(self._local, operation)(*args)

    def local_state(self) -> CircuitState:
        return self._local.state()


def circuit_key(channel: str, provider: str) -> str:
    # Under the installation's Redis prefix (installations sharing one Redis differ there).
    return f"{settings.NOTIFIER_INBOX_CHANNEL_PREFIX}circuit:{channel}:{provider}"


def circuit_states(keys: list[str]) -> list[CircuitState] | None:
    """The shared state of each circuit, read in one round trip; None without Redis or when it
    does not answer (each process then has its own circuits, which no other process can read)."""
    if not settings.REDIS_URL or not keys:
        return None

    def read(client):
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, "state")
        return pipe.execute()

    try:
        answers = redis_run(read)
    except RedisUnavailable:
        return None
    return [CircuitState(answer.decode()) if answer else CircuitState.CLOSED for answer in answers]
