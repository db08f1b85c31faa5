"""Getting deliveries onto their channel queues: after commit, and again by the sweep if lost.

The broker message is only the delivery id, and the delivery row is the outbox. A delivery is
committed `queued` with a short deadline (NOTIFIER_UNPUBLISHED_TIMEOUT_SECONDS): until RabbitMQ
confirms its message, nothing says it was ever published. A process killed between the commit
and the publish leaves exactly that, and the sweep publishes it within seconds. Once the broker
confirms, one UPDATE per publish moves the deadline out to NOTIFIER_QUEUED_TIMEOUT_SECONDS, the
time a message may wait in a backlog before it is presumed lost.
If publishing fails (broker down, no confirm), `recheck_at` is moved to now so the next sweep
publishes it.
After a failure the process stops trying for a few seconds (NOTIFIER_PUBLISH_PAUSE_SECONDS) and
hands everything to the sweep at once, so API requests during an outage cost a database write,
not a broker timeout each.
"""

import atexit
import functools
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models.functions import Now
from django.utils import timezone
from kombu.exceptions import OperationalError

from apps.channels.registry import batch_size
from apps.core.prepared import prepared_cursor
from apps.notifications.models import Delivery, DeliveryStatus
from apps.notifications.outbox.confirms import ConfirmedRound, rounds_supported
from apps.notifications.outbox.publisher import BackgroundPublisher
from apps.notifications.queues import PRIORITY_LEVELS, TASK_DELIVERIES_SEND_BATCH, TASK_DELIVERY_SEND, queue_name

logger = logging.getLogger(__name__)

# time.monotonic() until which this process does not try the broker (set after a failure).
_publish_paused_until = 0.0
# The web process's publishing thread (background_publishing_start), or None: publish inline.
_background_publisher: BackgroundPublisher | None = None


@dataclass(frozen=True)
class DeliveryMessage:
    """What publishing needs to know about a delivery: the id is all the worker receives."""

    delivery_id: str
    channel: str
    priority: str


def delivery_message(delivery: Delivery, *, priority: str) -> DeliveryMessage:
    return DeliveryMessage(delivery_id=str(delivery.id), channel=delivery.channel, priority=priority)


def publishing_paused() -> bool:
    """True while this process leaves publishing to the sweep after a broker failure."""
    return time.monotonic() < _publish_paused_until


def deliveries_publish_on_commit(messages: Sequence[DeliveryMessage]) -> None:
    """Publish once the surrounding transaction commits, so no worker looks for a row not yet there:
    in a web process, from its background publisher (publisher.py); elsewhere, or when that
    publisher's queue is full, here and now."""
    if messages:
        transaction.on_commit(lambda: _publish_committed(messages))


def _publish_committed(messages: Sequence[DeliveryMessage]) -> None:
    publisher = _background_publisher
    if publisher is None or publisher.pid != os.getpid() or not publisher.offer(messages):
        deliveries_publish(messages)


def background_publishing_start() -> None:
    """Publish this process's committed deliveries from a thread from now on (the web process:
    notifier/asgi.py). Workers publish inline: their tasks already run off any request's path.

    The thread belongs to the process that started it: a process forked from this one publishes
    inline (the pid check) rather than into a queue that no thread of its own reads.
    """
    global _background_publisher
    if _background_publisher is not None and _background_publisher.pid == os.getpid():
        return
    publisher = BackgroundPublisher(deliveries_publish, gather_seconds=settings.NOTIFIER_PUBLISH_GATHER_SECONDS)
    _background_publisher = publisher.start()
    atexit.register(publisher.stop)


def deliveries_publish(messages: Sequence[DeliveryMessage]) -> int:
    """Publish the messages on one pooled broker connection; return how many deliveries the
    broker confirmed.

    Deliveries of a channel that sends in batches (NOTIFIER_CHANNELS[channel]["BATCH_SIZE"])
    go several to a message, grouped by priority; the others one to a message. Never raises:
    this runs after the rows are committed, when the caller has already been told "accepted".
    What could not be published is handed to the sweep.
    """
    from celery_app import app

    global _publish_paused_until
    if publishing_paused():
        logger.info("publishing paused after a broker failure; %d deliveries left to the sweep", len(messages))
        deliveries_mark_unpublished(delivery_ids=[m.delivery_id for m in messages])
        return 0
    batches = list(_batches(messages))
    published = False
    try:
        with app.producer_or_acquire() as producer:
            _publish_round(batches, producer=producer)
        published = True
    except Exception:
        # Whatever broke (connection refused, channel closed, publish nacked, no confirm), the rows
        # are the truth: stop hammering a broker that is down and let the sweep publish them.
        _publish_paused_until = time.monotonic() + settings.NOTIFIER_PUBLISH_PAUSE_SECONDS
        logger.exception("publishing failed; %d deliveries left to the sweep", len(messages))
        deliveries_mark_unpublished(delivery_ids=[m.delivery_id for m in messages])
    if not published:
        return 0
    deliveries_mark_published(delivery_ids=[m.delivery_id for m in messages])
    return len(messages)


def _publish_round(batches: list[list[DeliveryMessage]], *, producer) -> None:
    """Publish every batch's message, then wait once for RabbitMQ to confirm them all (confirms.py).

    A pooled connection may have died since its last use (a broker restart): a connection error
    before the wait starts the round again, once, on a fresh connection. A message that went out
    before the error goes out twice, which the claim ignores. A missing or negative confirm is not
    tried again here: the broker is blocked or refusing, and the sweep takes the round.
    """
    if not rounds_supported(producer.connection):  # the embedded broker: one publish after another
        for batch in batches:
            _publish(batch, producer=producer)
        return
    for attempt in (1, 2):
        try:
            confirmed_round = ConfirmedRound(producer.connection)
            for batch in batches:
                _publish(batch, producer=confirmed_round.producer, retry=False)
        except Exception as error:
            _connection_discard(producer)  # where _publish already dropped it, collect() again costs no I/O
            # kombu's connection error, or the transport's: once more on a fresh connection.
            if attempt == 1 and isinstance(error, (OperationalError, *producer.connection.recoverable_connection_errors)):
                continue
            raise
        try:
            confirmed_round.wait(timeout=settings.NOTIFIER_PUBLISH_CONFIRM_TIMEOUT_SECONDS)
        except Exception:
            _connection_discard(producer)
            raise
        return


def _batches(messages: Sequence[DeliveryMessage]) -> Iterator[list[DeliveryMessage]]:
    groups: dict[tuple[str, str], list[DeliveryMessage]] = {}
    for message in messages:
        groups.setdefault((message.channel, message.priority), []).append(message)
    for (channel, _), group in groups.items():
        size = max(1, batch_size(channel))
        for start in range(0, len(group), size):
            yield group[start:start + size]


def _publish(batch: list[DeliveryMessage], *, producer, countdown: float | None = None, retry: bool = True) -> None:
    from celery_app import app

    first = batch[0]
    if len(batch) == 1:
        task, args = TASK_DELIVERY_SEND, [first.delivery_id]
    else:
        task, args = TASK_DELIVERIES_SEND_BATCH, [[m.delivery_id for m in batch]]
    try:
        # By name: the publisher needs the task's name, not its code (tasks.py imports this module).
        app.send_task(
            task,
            args=args,
            countdown=countdown,
            queue=queue_name(first.channel),
            priority=PRIORITY_LEVELS.get(first.priority, PRIORITY_LEVELS["normal"]),
            producer=producer,
            # A broker under a memory or disk alarm blocks publishers without refusing them:
            # give up waiting for its confirm instead of holding the request.
            confirm_timeout=settings.NOTIFIER_PUBLISH_CONFIRM_TIMEOUT_SECONDS,
            # A round's producer (confirms.py) must not be moved to another channel by kombu's retry.
            retry=retry,
        )
    except Exception:
        _connection_discard(producer)
        raise


def _connection_discard(producer) -> None:
    """Take a failed publish's connection out of use before the producer goes back to the pool.

    A confirm that timed out may still arrive later; on the same channel it would be read as
    the confirm of the next message published there, which would then count as published
    without RabbitMQ ever having confirmed it. Dropping the connection (no network I/O: the
    broker may be what hangs) makes the pool open a fresh one on next use.
    """
    try:
        producer.connection.collect()
    except Exception:
        logger.debug("dropping a failed publisher connection failed", exc_info=True)


def delivery_retry_publish(*, delivery: Delivery, countdown: float) -> bool:
    """Publish a countdown retry for a delivery just recorded `retrying`; False if it failed.

    A failure is only logged: the row says when to try again, and the sweep publishes it if no
    message comes back by then (recheck_at).
    """
    from celery_app import app

    message = delivery_message(delivery, priority=delivery.notification.priority)
    try:
        with app.producer_or_acquire() as producer:
            _publish([message], producer=producer, countdown=countdown)
    except Exception:
        logger.warning("could not publish the retry of delivery %s; the sweep will", delivery.id, exc_info=True)
        return False
    return True


def deliveries_publish_alone(*, delivery_ids: Sequence[str], queue: str, priority: int | None) -> bool:
    """Publish each id as a message of its own to `queue`; False if the broker did not take them all."""
    from celery_app import app

    try:
        with app.producer_or_acquire() as producer:
            for delivery_id in delivery_ids:
                app.send_task(
                    TASK_DELIVERY_SEND, args=[delivery_id], queue=queue, priority=priority, producer=producer,
                    confirm_timeout=settings.NOTIFIER_PUBLISH_CONFIRM_TIMEOUT_SECONDS,
                )
    except Exception:
        logger.warning("could not publish %d ids alone", len(delivery_ids), exc_info=True)
        return False
    return True


def deliveries_mark_published(*, delivery_ids: Sequence[str]) -> None:
    """The broker confirmed these deliveries' messages: from now on only a backlog older than the
    queued timeout (or a broker that lost them) makes the sweep publish them again.

    Only rows still `queued` with an earlier deadline move: a worker may already have claimed
    one, and the sweep may have set a longer wait for one it published again.
    """
    if not delivery_ids:
        return
    deadline = timezone.now() + timedelta(seconds=settings.NOTIFIER_QUEUED_TIMEOUT_SECONDS)
    try:
        if connection.vendor == "postgresql":
            with prepared_cursor(connection) as cursor:
                cursor.execute(_mark_published_sql(), [list(delivery_ids), DeliveryStatus.QUEUED, deadline, deadline])
        else:
            Delivery.objects.filter(id__in=delivery_ids, status=DeliveryStatus.QUEUED, recheck_at__lt=deadline).update(
                recheck_at=deadline
            )
    except Exception as error:
        # The messages are on their queues; the worst this costs is one spare message each. A
        # database outage is expected here, not a bug: one line, no traceback.
        logger.warning("could not mark %d published deliveries: %s: %s", len(delivery_ids),
                       type(error).__name__, error)


@functools.cache
def _mark_published_sql() -> str:
    """The mark on PostgreSQL: the ids as one array, a statement of fixed text (prepared,
    apps/core/prepared.py), where Django's `id IN (…)` wrote a placeholder per id, so that every
    mark was a new statement to quote, parse and plan.

    The rows are locked in key order (`ORDER BY id FOR UPDATE`), whatever plan PostgreSQL picks to
    find them: a worker's claim (delivery/claim.py) takes its few rows by the key's index, in key
    order, and a mark that took its rows in another order, the order they were published or where
    they lie in the table, deadlocked with the claims (docs/performance.md).

    Only the key's index can find the rows: `coalesce` (the column is never null) hides the
    status from the status indexes. With statistics older than the backlog, PostgreSQL ANDed the
    key with the status index and read an entry for every queued delivery, 49,469 of them for a
    mark of 10 ids, so a mark cost more the longer the queues grew (docs/performance.md).
    """
    table = connection.ops.quote_name(Delivery._meta.db_table)
    return (f"WITH marked AS (SELECT id FROM {table} WHERE id = ANY(%s::uuid[]) AND coalesce(status, '') = %s"
            f" AND recheck_at < %s ORDER BY id FOR UPDATE)"
            f" UPDATE {table} SET recheck_at = %s FROM marked WHERE {table}.id = marked.id")


def deliveries_mark_unpublished(*, delivery_ids: Sequence[str]) -> None:
    try:
        Delivery.objects.filter(id__in=delivery_ids, status=DeliveryStatus.QUEUED).update(recheck_at=Now())
    except Exception as error:
        # The database is gone too: recheck_at already expires after the unpublished timeout.
        logger.warning("could not bring %d unpublished deliveries forward: %s: %s", len(delivery_ids),
                       type(error).__name__, error)


def queued_recheck_at(now: datetime) -> datetime:
    """When a delivery queued now, whose publish nobody has confirmed yet, is presumed unpublished."""
    return now + timedelta(seconds=settings.NOTIFIER_UNPUBLISHED_TIMEOUT_SECONDS)
