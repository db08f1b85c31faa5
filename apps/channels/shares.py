"""How many sends of one project may be in flight at once on a channel, across every worker.

A webhook receiver that hangs holds the worker sending to it until the request's total deadline.
Without a bound, one tenant's slow endpoint would take every webhook worker and delay everybody's
webhooks. So each webhook send first takes a lease of its project's share
(NOTIFIER_WEBHOOK_PROJECT_MAX_CONCURRENCY), and a send over the share is deferred by its task
without being claimed: no attempt spent, no worker held while it waits.

The leases live in Redis, one sorted set per project and channel whose members expire by score:
taking one is a script that drops the expired leases, counts the rest and adds one, atomically,
with Redis's own clock (the workers' clocks may differ). A worker killed mid-send leaves its lease
behind until it expires, after NOTIFIER_SEND_TIME_LIMIT_SECONDS: no send outlives that limit.

Without REDIS_URL (the embedded default, one machine) there is no share. If Redis fails, sends go
ahead without a lease: a Redis outage must not stop webhooks, and the share is a fairness bound,
not a guarantee anybody's data depends on.
"""

import contextlib
import logging
import secrets
from collections.abc import Iterator

from django.conf import settings

from apps.core.redis import RedisUnavailable, redis_run

logger = logging.getLogger(__name__)

# The share name of status webhook posts (not a channel: no delivery is sent on it).
STATUS_WEBHOOK_SHARE = "status_webhook"

# KEYS[1] the project's leases; ARGV: lease seconds, the share, this lease's token. 1 if taken.
_TAKE = """
local now = redis.call('TIME')
local at = tonumber(now[1]) + tonumber(now[2]) / 1e6
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', at)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], at + tonumber(ARGV[1]), ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1])) + 1)
return 1
"""


def shares_bound() -> bool:
    """True when some channel bounds a project's sends in flight (so leases are worth looking up)."""
    return project_share("webhook") > 0


def project_share(channel: str) -> int:
    """Sends of one project allowed in flight at once on `channel`; 0 for no bound.

    Status webhooks (STATUS_WEBHOOK_SHARE) go to a receiver the project chose too, so they get a
    share of their own: a hung status receiver never holds the webhook channel's, nor the reverse.
    """
    if not settings.REDIS_URL:
        return 0
    if channel == "webhook":
        return settings.NOTIFIER_WEBHOOK_PROJECT_MAX_CONCURRENCY
    if channel == STATUS_WEBHOOK_SHARE:
        return settings.NOTIFIER_STATUS_WEBHOOK_PROJECT_MAX_CONCURRENCY
    return 0


@contextlib.contextmanager
def project_send_lease(*, channel: str, project_id: int) -> Iterator[bool]:
    """Hold one of the project's send leases on `channel` for the block; yields False when the
    project's share is taken (the caller defers the send), True otherwise."""
    share = project_share(channel)
    if not share:
        yield True
        return
    key = f"{settings.NOTIFIER_INBOX_CHANNEL_PREFIX}sends.{channel}.{project_id}"
    token = secrets.token_hex(8)
    try:
        taken = redis_run(lambda client: client.eval(
            _TAKE, 1, key, settings.NOTIFIER_SEND_TIME_LIMIT_SECONDS, share, token))
    except RedisUnavailable:
        yield True  # sent without a lease: see the module's docstring
        return
    if not taken:
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(RedisUnavailable):  # then it expires by itself
            redis_run(lambda client: client.zrem(key, token))
