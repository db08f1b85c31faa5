"""A one-delivery message takes the one-delivery messages waiting behind it, to send them together.

A single `POST /notifications` publishes one message per delivery, so a burst of them cost one
task each: one claim, one commit, one recording per email. Before claiming, the task for such a
message (`notifier.deliveries.send`) on a channel that sends in batches takes up to BATCH_SIZE - 1
more of them that are ready in its queue (AMQP basic.get, on a broker connection of this process
that nothing else uses), and the batch is claimed, sent and recorded as one.

The messages taken keep the guarantees of the task's own (acks_late):
- each is acknowledged only once the batch is recorded; one naming no delivery is rejected into
  the dead-letter queue, as its own task would have done;
- if the task fails before that (the database unavailable, a bug, the time limit), each is handed
  back to the queue (basic.reject, requeue) for a task of its own;
- if the worker dies (SIGKILL, OOM) or its broker connection drops, RabbitMQ puts every message
  still unacknowledged back, as it does the task's own: their deliveries are `sending` by then,
  so the redelivered messages claim nothing, and the sweep takes them back after their deadline.
  Duplicates stay within the documented window (sent, not yet recorded).

Only plain ready sends are taken: a countdown message (a retry, a deferral: it has an ETA), any
other task, or a body not naming one delivery is handed back at once and ends the taking, so a
message that must wait never runs early and none is taken twice in one go. A channel whose
projects have send shares (webhooks) takes none: each send holds its project's lease.

The trade-off against a consumer that collects messages as they arrive: nothing waits for more
to come, so only a backlog is batched (a burst faster than the workers); a message arriving to an
idle worker is sent alone at once, as before.
"""

import logging
import threading
from contextlib import contextmanager

from apps.channels.registry import batch_size
from apps.channels.shares import project_share
from apps.notifications.queues import TASK_DELIVERY_SEND, queue_channel

logger = logging.getLogger(__name__)

# The connection messages are taken on: one per thread (a prefork child has one; a threads
# worker's tasks must not share an AMQP channel), used by nothing else.
_local = threading.local()


class TakenSends:
    """The messages taken for one task: their delivery ids, and how each is settled."""

    def __init__(self, messages: list):
        self._messages = {_delivery_id(message): message for message in messages}

    @property
    def delivery_ids(self) -> list[str]:
        return list(self._messages)

    def settle(self, *, unknown: list[str]) -> None:
        """The batch is recorded: acknowledge each message, rejecting those naming no delivery."""
        unknown_ids = set(unknown)
        for delivery_id, message in self._messages.items():
            if delivery_id in unknown_ids:
                _quietly(message.reject, requeue=False)  # dead-lettered, as its own task would
            else:
                _quietly(message.ack)
        self._messages = {}

    def hand_back(self) -> None:
        """Nothing was recorded for them: back to the queue, each for a task of its own."""
        for message in self._messages.values():
            _quietly(message.reject, requeue=True)
        self._messages = {}


@contextmanager
def waiting_sends_taken(*, queue: str, delivery_id: str):
    """The ready one-delivery messages of `queue` that can join this one's batch (see above).

    Yields a TakenSends (maybe empty); whatever was not settled when the block ends, normally or
    not, is handed back.
    """
    taken = TakenSends(_take(queue=queue, limit=_room(queue) - 1, own=delivery_id))
    try:
        yield taken
    finally:
        taken.hand_back()


def _room(queue: str) -> int:
    channel = queue_channel(queue)
    if not channel or project_share(channel):
        return 1
    return batch_size(channel)


def _take(*, queue: str, limit: int, own: str) -> list:
    if limit <= 0:
        return []
    taken = []
    try:
        bound = _queue_bound(queue)
        while len(taken) < limit:
            message = bound.get(no_ack=False)
            if message is None:
                break
            if not _plain_send(message) or _delivery_id(message) in {own, *map(_delivery_id, taken)}:
                message.reject(requeue=True)
                break
            taken.append(message)
    except Exception:
        # Taking is an optimisation: a broker hiccup leaves this task sending its own delivery.
        # Those taken come back to the queue with the connection dropped.
        logger.warning("could not take waiting sends from %s", queue, exc_info=True)
        _broker_discard()
        return []
    if taken:
        logger.info("%d waiting sends of %s taken into one batch", len(taken), queue)
    return taken


def _plain_send(message) -> bool:
    headers = message.headers or {}
    if headers.get("task") != TASK_DELIVERY_SEND or headers.get("eta"):
        return False
    try:
        args = message.decode()[0]
    except Exception:
        return False
    return isinstance(args, list) and len(args) == 1 and isinstance(args[0], str)


def _delivery_id(message) -> str:
    return message.decode()[0][0]


def _queue_bound(queue: str):
    from kombu import Queue

    from celery_app import app

    if getattr(_local, "broker", None) is None:
        # No heartbeats: nothing in this process would send them while the worker waits for its
        # next task, and the broker would close the connection for it.
        _local.broker = app.connection_for_read(heartbeat=0)
    return Queue(queue, no_declare=True).bind(_local.broker.default_channel)


def _broker_discard() -> None:
    broker, _local.broker = getattr(_local, "broker", None), None
    if broker is not None:
        try:
            broker.collect()  # no network I/O: the broker may be what failed
        except Exception:
            logger.debug("dropping the connection for waiting sends failed", exc_info=True)


def _quietly(settle, **kwargs) -> None:
    # A connection lost before settling hands every unacknowledged message back by itself.
    try:
        settle(**kwargs)
    except Exception:
        logger.warning("settling a taken send failed; the broker redelivers it", exc_info=True)
        _broker_discard()
