"""The pipeline's Prometheus metrics (docs/operations.md, "Metrics", lists each one).

Counters and histograms are written by the processes that do the work (prometheus_client's
multiprocess mode, see the settings): once per recorded batch for counts, once per attempt for
the provider's latency, never with a query of their own. Gauges that the database or the broker
knows better are read at scrape time by the collectors below, on the web process that answers.
"""

import logging
from collections import Counter as Tally

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from apps.notifications.models import DEAD_LETTERS, AttemptOutcome, Delivery, DeliveryStatus
from apps.notifications.queues import queue_depths

logger = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.DEAD, DeliveryStatus.CANCELLED})

deliveries_total = Counter(
    "notifier_deliveries_total",
    "Deliveries that reached a final status in a worker or the sweep, by channel and status.",
    ["channel", "status"],
)
attempts_total = Counter(
    "notifier_delivery_attempts_total", "Send attempts recorded, by channel and outcome.", ["channel", "outcome"],
)
retries_total = Counter(
    "notifier_delivery_retries_total", "Attempts that ended in a scheduled retry, by channel.", ["channel"],
)
send_latency = Histogram(
    "notifier_delivery_latency_seconds",
    "From a delivery being accepted (or due, when scheduled) to its provider taking it, by channel.",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
provider_latency = Histogram(
    "notifier_provider_call_seconds",
    "One call to a channel's provider (a send), whatever its answer, by channel.",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
sweep_runs_total = Counter("notifier_sweep_runs_total", "Sweep runs completed.")
sweep_deliveries_total = Counter(
    "notifier_sweep_deliveries_total",
    "Deliveries the sweep took back, by what it did: requeued, worker_lost, dead, cancelled.",
    ["action"],
)


def attempts_observe(recorded) -> None:
    """Count a recorded batch (recording.Attempted items): one increment per label set, no query."""
    attempts, finals, retries = Tally(), Tally(), Tally()
    for item in recorded:
        channel = item.delivery.channel
        attempts[channel, item.attempt.outcome] += 1
        status = item.state["status"]
        if status in FINAL_STATUSES:
            finals[channel, status] += 1
        elif status == DeliveryStatus.RETRYING:
            retries[channel] += 1
        if status == DeliveryStatus.SENT:
            _latency_observe(item)
    for (channel, outcome), n in attempts.items():
        attempts_total.labels(channel, outcome).inc(n)
    for (channel, status), n in finals.items():
        deliveries_total.labels(channel, status).inc(n)
    for channel, n in retries.items():
        retries_total.labels(channel).inc(n)


def _latency_observe(item) -> None:
    delivery = item.delivery
    if delivery.hold_reason:
        return  # held for the user's quiet hours: hours of waiting by design, not latency
    notification = delivery.notification
    start = max(delivery.created_at, notification.send_at) if notification.send_at else delivery.created_at
    send_latency.labels(delivery.channel).observe(max((item.state["sent_at"] - start).total_seconds(), 0.0))


def sweep_observe(result) -> None:
    """Count one sweep run (a sweep.SweepResult): what it found, the deliveries it ended (dead,
    cancelled) and the attempts it recorded as lost with their worker."""
    sweep_runs_total.inc()
    for action, n in result.as_dict().items():
        if n:
            sweep_deliveries_total.labels(action).inc(n)
    for (channel, status), n in result.ended_by_channel.items():
        deliveries_total.labels(channel, status).inc(n)
    for channel, n in result.lost_by_channel.items():
        attempts_total.labels(channel, AttemptOutcome.WORKER_LOST).inc(n)


class DeadLetterCollector:
    """`notifier_dead_letters{channel}`: the dead-letter queue of record, counted at scrape time.

    Read from the database (the partial index of dead, undiscarded deliveries), which is the
    truth whatever replay or discard happened in whichever process.
    """

    def collect(self):
        gauge = GaugeMetricFamily("notifier_dead_letters", "Dead deliveries not discarded (the dead-letter queue), "
                                  "by channel.", labels=["channel"])
        try:
            counts = dict(
                Delivery.objects.filter(DEAD_LETTERS).order_by()
                .values_list("channel").annotate(n=Count("id")).values_list("channel", "n")
            )
        except DatabaseError:
            logger.warning("metrics: the database did not answer; dead letters left out of this scrape")
            return
        for channel in settings.NOTIFICATION_CHANNELS:
            gauge.add_metric([channel], counts.get(channel, 0))
        yield gauge


class QueueDepthCollector:
    """`notifier_queue_messages{queue}` from RabbitMQ at scrape time, and `notifier_broker_up`.

    Each queue is declared passively on one short-lived connection bounded by
    NOTIFIER_METRICS_BROKER_TIMEOUT_SECONDS: a broker that is down or silent makes
    `notifier_broker_up` 0 and leaves the depths out, and the scrape still answers.
    """

    def collect(self):
        names = [q.name for q in settings.CELERY_TASK_QUEUES] + [q.name for q in settings.NOTIFIER_DEAD_LETTER_QUEUES]
        depths = queue_depths(names, broker_url=settings.CELERY_BROKER_URL,
                              transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
                              timeout=settings.NOTIFIER_METRICS_BROKER_TIMEOUT_SECONDS)
        up = GaugeMetricFamily("notifier_broker_up", "1 if the broker answered this scrape's queue depth reads.")
        up.add_metric([], 0 if depths is None else 1)
        yield up
        if depths is None:
            return
        gauge = GaugeMetricFamily("notifier_queue_messages", "Messages in a queue (ready and unacknowledged).",
                                  labels=["queue"])
        for name, depth in depths.items():
            if depth is not None:  # None: not declared yet, no worker has started
                gauge.add_metric([name], depth)
        yield gauge

