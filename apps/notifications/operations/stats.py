"""What the operators' dashboard (and anything else that reports on the pipeline, e.g. a metrics
exporter) reads: delivery counts, latency, the dead-letter queue, provider errors, queue depths.

Every database query here is bounded by an index, whatever the size of the delivery table: a
window of recent rows (`delivery_recent`, `delivery_sent_recent`, `attempt_recent`) or the
dead-letter queue's partial index. tests/console/test_dashboard.py checks the plans.
"""

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from apps.channels.registry import channel_names
from apps.notifications.models import DEAD_LETTERS, AttemptOutcome, Delivery, DeliveryAttempt
from apps.notifications.queues import dead_letter_queue_name, queue_depths, queue_name

PERCENTILES = (50, 90, 99)
# The broker's answer is awaited this long at most: a broker that is down or hangs makes the
# dashboard say "unavailable", never makes it hang.
BROKER_TIMEOUT_SECONDS = 2.0


def deliveries_by_channel_status(*, since: datetime) -> dict[str, dict[str, int]]:
    """Deliveries created since `since`, counted by channel then status (their status now)."""
    rows = (
        Delivery.objects.filter(created_at__gte=since).order_by()
        .values_list("channel", "status").annotate(n=Count("*"))
    )
    counts: dict[str, dict[str, int]] = {}
    for channel, status, n in rows:
        counts.setdefault(channel, {})[status] = n
    return counts


@dataclass(frozen=True)
class Latency:
    """Seconds from accepted (the delivery's creation) to sent (the provider took it)."""

    channel: str
    count: int
    percentiles: dict[int, float]  # {50: seconds, 90: ..., 99: ...}


def sent_latency(*, since: datetime) -> list[Latency]:
    """Accepted→sent latency percentiles per channel, of the deliveries sent since `since`.

    Scheduled sends (`send_at`) count from their acceptance too: a long tail here may be a
    schedule rather than a backlog; the queue depths tell which.
    """
    if connection.vendor == "postgresql":
        return _sent_latency_postgresql(since)
    seconds: dict[str, list[float]] = {}
    for channel, created_at, sent_at in (
        Delivery.objects.filter(sent_at__gte=since).order_by().values_list("channel", "created_at", "sent_at")
    ):
        seconds.setdefault(channel, []).append(max((sent_at - created_at).total_seconds(), 0.0))
    return [Latency(channel, len(values), {p: _percentile(sorted(values), p) for p in PERCENTILES})
            for channel, values in sorted(seconds.items())]


def _sent_latency_postgresql(since: datetime) -> list[Latency]:
    table = Delivery._meta.db_table
    fractions = ", ".join(f"percentile_cont({p / 100}) WITHIN GROUP (ORDER BY latency)" for p in PERCENTILES)
    sql = (
        f"SELECT channel, count(*), {fractions} FROM ("  # the SQL text holds constants only
        f"  SELECT channel, GREATEST(EXTRACT(EPOCH FROM (sent_at - created_at)), 0) AS latency"
        f"  FROM {table} WHERE sent_at >= %s AND sent_at IS NOT NULL"
        f") AS sent GROUP BY channel ORDER BY channel"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [since])
        rows = cursor.fetchall()
    return [Latency(row[0], row[1], {p: float(v) for p, v in zip(PERCENTILES, row[2:], strict=True)}) for row in rows]


def _percentile(ordered: list[float], p: int) -> float:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    if not ordered:
        return 0.0
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class DeadLetterCounts:
    total: int
    by_channel: dict[str, int]
    by_error: dict[str, int]  # last_error_code ("" when none was recorded)


def dead_letter_counts() -> DeadLetterCounts:
    """The dead-letter queue of record, counted per channel and per error code."""
    queue = Delivery.objects.filter(DEAD_LETTERS).order_by()
    by_channel = dict(queue.values_list("channel").annotate(n=Count("*")).order_by("-n", "channel"))
    by_error = dict(queue.values_list("last_error_code").annotate(n=Count("*")).order_by("-n", "last_error_code"))
    return DeadLetterCounts(total=sum(by_channel.values()), by_channel=by_channel, by_error=by_error)


@dataclass(frozen=True)
class ProviderErrors:
    channel: str
    attempts: int
    errors: int  # transient and permanent provider errors
    top_codes: list[tuple[str, int]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.errors / self.attempts if self.attempts else 0.0


_PROVIDER_ERRORS = (AttemptOutcome.TRANSIENT_ERROR, AttemptOutcome.PERMANENT_ERROR)


def provider_error_rates(*, since: datetime, top: int = 3) -> list[ProviderErrors]:
    """Per channel, the attempts made since `since` and how many a provider answered with an error,
    with the most frequent error codes."""
    attempts = DeliveryAttempt.objects.filter(started_at__gte=since).order_by()
    outcomes = attempts.values_list("delivery__channel", "outcome").annotate(n=Count("*"))
    codes = (attempts.filter(outcome__in=_PROVIDER_ERRORS)
             .values_list("delivery__channel", "error_code").annotate(n=Count("*")).order_by("-n", "error_code"))
    totals: dict[str, list[int]] = {}
    for channel, outcome, n in outcomes:
        counts = totals.setdefault(channel, [0, 0])
        counts[0] += n
        counts[1] += n if outcome in _PROVIDER_ERRORS else 0
    top_codes: dict[str, list[tuple[str, int]]] = {}
    for channel, code, n in codes:
        if len(top_codes.setdefault(channel, [])) < top:
            top_codes[channel].append((code, n))
    return [ProviderErrors(channel, attempts_n, errors_n, top_codes.get(channel, []))
            for channel, (attempts_n, errors_n) in sorted(totals.items())]


@dataclass(frozen=True)
class QueueDepth:
    channel: str
    queue: str
    messages: int | None  # None: the queue does not exist yet (no worker has declared it)
    dead_queue: str
    dead_messages: int | None


def channel_queue_depths(*, timeout: float = BROKER_TIMEOUT_SECONDS) -> list[QueueDepth] | None:
    """Messages waiting in each channel's queue and its dead-letter queue; None when the broker
    cannot be reached within `timeout`."""
    names = {channel: (queue_name(channel), dead_letter_queue_name(channel)) for channel in channel_names()}
    depths = queue_depths([name for pair in names.values() for name in pair], broker_url=settings.CELERY_BROKER_URL,
                          transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS, timeout=timeout)
    if depths is None:
        return None
    return [QueueDepth(channel, queue, depths.get(queue), dead_queue, depths.get(dead_queue))
            for channel, (queue, dead_queue) in names.items()]


@dataclass(frozen=True)
class Dashboard:
    generated_at: datetime
    last_hour: dict[str, dict[str, int]]
    last_day: dict[str, dict[str, int]]
    latency: list[Latency]
    dead_letters: DeadLetterCounts
    provider_errors: list[ProviderErrors]
    queues: list[QueueDepth] | None


def dashboard(*, now: datetime | None = None, broker_timeout: float = BROKER_TIMEOUT_SECONDS) -> Dashboard:
    now = now or timezone.now()
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)
    return Dashboard(
        generated_at=now,
        last_hour=deliveries_by_channel_status(since=hour),
        last_day=deliveries_by_channel_status(since=day),
        latency=sent_latency(since=hour),
        dead_letters=dead_letter_counts(),
        provider_errors=provider_error_rates(since=hour),
        queues=channel_queue_depths(timeout=broker_timeout),
    )
