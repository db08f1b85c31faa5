"""This process's Redis client, for the small things Redis does here besides caching: waking the
inbox streams (apps/inbox/live.py) and the webhook leases of each project (apps/channels/shares.py).

Neither may stall a worker: the message is stored, the send may go out. Every command therefore
has a short timeout (NOTIFIER_REDIS_TIMEOUT_SECONDS), and after a failure the process leaves Redis
alone for NOTIFIER_REDIS_PAUSE_SECONDS, so a Redis that accepts connections and never answers
costs one timeout per pause, not one per message.
"""

import logging
import time
from collections.abc import Callable
from functools import cache
from typing import TypeVar

from django.conf import settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

# time.monotonic() until which this process does not try Redis (set after a failure).
_paused_until = 0.0


class RedisUnavailable(Exception):
    """Redis failed or timed out just now, or did a moment ago and is left alone for a while."""


def redis_run(operation: Callable[..., T]) -> T:
    """operation(client), or RedisUnavailable. Only with REDIS_URL set."""
    global _paused_until
    if time.monotonic() < _paused_until:
        raise RedisUnavailable("Redis failed a moment ago; left alone for now.")
    import redis

    try:
        return operation(_client(settings.REDIS_URL))
    except (redis.RedisError, OSError) as exc:
        _paused_until = time.monotonic() + settings.NOTIFIER_REDIS_PAUSE_SECONDS
        logger.warning("Redis failed (%s); left alone for %g s", exc, settings.NOTIFIER_REDIS_PAUSE_SECONDS)
        raise RedisUnavailable(str(exc)) from exc


def redis_pause_reset() -> None:
    """Try Redis again at the next call (tests; an operator's shell after fixing Redis)."""
    global _paused_until
    _paused_until = 0.0


@cache
def _client(url: str):
    import redis

    timeout = settings.NOTIFIER_REDIS_TIMEOUT_SECONDS
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
