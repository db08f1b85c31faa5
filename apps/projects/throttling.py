"""How fast one API key may call the API: a token bucket per key, shared by every web process.

A key's bucket holds the rate's count (`100/s`: 100) and refills evenly over its period. A request
costs 1, a bulk one per item, a broadcast to a list one per user (the view's `rate_limit_cost`; an
audience broadcast pays per user as its fan-out runs, apps/notifications/intake/broadcasts.py). A view
with a cost is first asked whether the bucket holds anything at all, before its body is parsed:
a key over its rate cannot make the service parse megabytes to be told 429. A request is let through
while the bucket holds its cost, or, for a cost larger than the whole bucket (a bulk of 1,000 at
`100/s`), while the bucket is full; it then takes its whole cost, leaving the bucket in debt, so the
key's average rate holds either way. A refused request costs nothing and answers 429 with
`Retry-After`: when enough will have refilled.

With REDIS_URL the bucket is one Redis hash per key, read and written by one Lua script on Redis's
clock: one round trip per request, atomic across processes. A Redis that fails or does not answer
(within NOTIFIER_REDIS_TIMEOUT_SECONDS) lets requests through: the limit protects the service,
and refusing every caller because Redis is down would be the outage it is meant to prevent.
Without REDIS_URL (dev, `make run`) each process keeps its own buckets.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from rest_framework import exceptions, throttling

from apps.core.redis import RedisUnavailable, redis_run
from apps.projects.models import ApiKey, Project
from apps.projects.rates import Rate, rate_parse

logger = logging.getLogger(__name__)

# KEYS[1]: the bucket. ARGV: capacity, period in ms, cost, peek (1: only say, take nothing).
# Returns {allowed, tokens left, wait ms}. Tokens are kept as a float string; `ts` is Redis's clock
# in ms, so every process agrees.
_TOKEN_BUCKET = """
local now_s = redis.call('TIME')
local now = tonumber(now_s[1]) * 1000 + math.floor(tonumber(now_s[2]) / 1000)
local capacity = tonumber(ARGV[1])
local per_ms = capacity / tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * per_ms)
local need = math.min(cost, capacity)
if tokens < need then
  return {0, math.floor(tokens), math.ceil((need - tokens) / per_ms)}
end
if ARGV[4] == '1' then
  return {1, math.floor(tokens), 0}
end
tokens = tokens - cost
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / per_ms) + 1000)
return {1, math.floor(tokens), 0}
"""

_script = None
_local_buckets: dict[int, tuple[float, float]] = {}
_local_lock = threading.Lock()
_last_fail_open_log = 0.0


@dataclass(frozen=True)
class Take:
    """What a key's bucket said: let through or not, when to retry, what is left (whole requests)."""

    rate: Rate
    allowed: bool
    wait: float = 0.0
    remaining: int = 0

    @property
    def headers(self) -> dict[str, str]:
        # RateLimit-Reset: seconds until the bucket is full again (or until this request would pass).
        reset = self.wait if not self.allowed else (self.rate.count - self.remaining) / self.rate.per_second
        return {"RateLimit-Limit": str(self.rate.count), "RateLimit-Remaining": str(max(0, self.remaining)),
                "RateLimit-Reset": str(max(1 if not self.allowed else 0, math.ceil(reset)))}


class RateLimited(exceptions.Throttled):
    """A 429 (`rate_limited` in the envelope) with Retry-After and the RateLimit headers."""

    def __init__(self, take: Take):
        super().__init__(wait=take.wait, detail=f"Too many requests for this API key ({take.rate.count} per "
                                                f"{take.rate.period_seconds} s).")
        self.headers = {**take.headers, "RateLimit-Remaining": "0"}


def api_rate_of(project: Project) -> Rate | None:
    """The project's own rate, else the server's default; None when unlimited."""
    if project.api_rate_limit:
        try:
            return rate_parse(project.api_rate_limit)
        except ValueError:  # written around the admin's validation (a shell, SQL): the default applies
            logger.warning("Project %s has an invalid api_rate_limit %r", project.pk, project.api_rate_limit)
    return rate_parse(settings.NOTIFIER_API_RATE_LIMIT or "off")


def api_key_take(*, api_key_id: int, rate: Rate, cost: int, peek: bool = False) -> Take | None:
    """Take `cost` from the key's bucket (with `peek`, only say whether it could); None when Redis
    could not say (the request goes through)."""
    if not settings.REDIS_URL:
        return _local_take(api_key_id=api_key_id, rate=rate, cost=cost, peek=peek)
    key = f"{settings.NOTIFIER_INBOX_CHANNEL_PREFIX}ratelimit.{api_key_id}"
    try:
        allowed, tokens, wait_ms = redis_run(
            lambda client: _bucket_script(client)(
                keys=[key], args=[rate.count, rate.period_seconds * 1000, cost, int(peek)], client=client)
        )
    except RedisUnavailable as exc:
        _log_fail_open(exc)
        return None
    return Take(rate=rate, allowed=bool(allowed), wait=wait_ms / 1000, remaining=int(tokens))


def _bucket_script(client):
    global _script
    if _script is None:
        _script = client.register_script(_TOKEN_BUCKET)
    return _script


def _local_take(*, api_key_id: int, rate: Rate, cost: int, peek: bool = False) -> Take:
    with _local_lock:
        now = time.monotonic()
        tokens, then = _local_buckets.get(api_key_id, (rate.count, now))
        tokens = min(rate.count, tokens + (now - then) * rate.per_second)
        need = min(cost, rate.count)
        if tokens < need:
            _local_buckets[api_key_id] = (tokens, now)
            return Take(rate=rate, allowed=False, wait=(need - tokens) / rate.per_second, remaining=math.floor(tokens))
        if peek:
            return Take(rate=rate, allowed=True, remaining=math.floor(tokens))
        _local_buckets[api_key_id] = (tokens - cost, now)
        return Take(rate=rate, allowed=True, remaining=math.floor(tokens - cost))


def local_buckets_clear() -> None:
    """Forget this process's buckets (tests)."""
    with _local_lock:
        _local_buckets.clear()


def _log_fail_open(exc: Exception) -> None:
    # Once per pause, not once per request: while Redis is down every request comes through here.
    global _last_fail_open_log
    if time.monotonic() - _last_fail_open_log >= settings.NOTIFIER_REDIS_PAUSE_SECONDS:
        _last_fail_open_log = time.monotonic()
        logger.warning("API rate limits not enforced: Redis unavailable (%s)", exc)


class ApiKeyRateThrottle(throttling.BaseThrottle):
    """DRF throttle for API-key requests; inbox (user token) requests pass, they have their own caps."""

    def allow_request(self, request, view) -> bool:
        if not isinstance(request.auth, ApiKey):
            return True
        rate = api_rate_of(request.auth.project)
        if rate is None:
            return True
        cost_of = getattr(view, "rate_limit_cost", None)
        if cost_of:
            # Every request costs at least 1: with not even that left, refuse before the cost is
            # known, since knowing it means parsing the body.
            peeked = api_key_take(api_key_id=request.auth.pk, rate=rate, cost=1, peek=True)
            if peeked is not None and not peeked.allowed:
                raise RateLimited(peeked)
        cost = max(1, cost_of(request)) if cost_of else 1
        take = api_key_take(api_key_id=request.auth.pk, rate=rate, cost=cost)
        if take is None:
            return True
        if not take.allowed:
            raise RateLimited(take)
        request._request.notifier_rate_limit_headers = take.headers  # for RateLimitHeadersMiddleware
        return True


def items_rate_limit_cost(field: str, *, most: int):
    """A view's `rate_limit_cost` for a body `{field: [items]}`: one per item, so a bulk is no way
    round the rate; a body without that list costs 1 (and gets its 400, or is not a bulk)."""

    def cost(request) -> int:
        items = request.data.get(field) if isinstance(request.data, dict) else None
        return min(len(items), most) if isinstance(items, list) else 1

    return staticmethod(cost)


class RateLimitHeadersMiddleware:
    """Puts the RateLimit-* headers of an API-key request on its answer, so a client can pace itself
    before it meets a 429 (DRF throttles cannot touch the response)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        for name, value in getattr(request, "notifier_rate_limit_headers", {}).items():
            response[name] = value
        return response
