"""The dead-letter queue: what could not be sent, kept for an operator to replay or discard.

It lives in two places:
- Of record, the database: deliveries `dead` (attempts exhausted, or a bug of ours) and not yet
  discarded. Replay gives one a fresh attempt budget and queues it again; its attempt history
  stays. Discard leaves it `dead` (that is still how it ended) but takes it out of the queue.
  Every replay and discard is recorded with who and when (DeliveryOperatorAction).
- The broker: each channel queue dead-letters what a worker rejects (a message naming no
  delivery) to notifications.<channel>.dead. Those are messages, not deliveries: they can be
  listed, sent back to the queue they came from, or dropped.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from kombu import Producer

from apps.core.audit import audit_record
from apps.notifications.models import (
    DEAD_LETTERS,
    Delivery,
    DeliveryOperatorAction,
    DeliveryStatus,
    OperatorActionKind,
)
from apps.notifications.outbox.deliveries import deliveries_publish_on_commit, delivery_message, queued_recheck_at
from apps.notifications.queues import dead_letter_origin, dead_letter_queue_name

# Replay also takes `failed` deliveries (from the admin): a permanent error is sometimes ours to
# fix, e.g. a mail server refusing our credentials with a 5xx until an operator corrects them.
REPLAYABLE_STATUSES = (DeliveryStatus.DEAD, DeliveryStatus.FAILED)


def dead_letters_list(*, channel: str = "", since: datetime | None = None, ids: Iterable[str] = ()) -> QuerySet[Delivery]:
    """The dead-letter queue of record, oldest first: dead deliveries not discarded.

    `since` keeps those that died at or after it.
    """
    deliveries = Delivery.objects.filter(DEAD_LETTERS)
    if channel:
        deliveries = deliveries.filter(channel=channel)
    if since is not None:
        deliveries = deliveries.filter(status_changed_at__gte=since)
    ids = list(ids)
    if ids:
        deliveries = deliveries.filter(id__in=ids)
    return deliveries.select_related("notification").order_by("status_changed_at", "id")


@dataclass
class OperatorActionResult:
    done: list[Delivery] = field(default_factory=list)
    # Asked for but left alone, with why: {delivery id: its status}.
    skipped: dict[str, str] = field(default_factory=dict)


@transaction.atomic
def dead_letters_replay(*, delivery_ids: Iterable, actor=None, actor_label: str = "", note: str = "") -> OperatorActionResult:
    """Queue dead (or failed) deliveries again with a fresh attempt budget, keeping their history.

    Anything else among the ids (sent meanwhile, replayed by someone else, discarded) is
    skipped. Publishing happens after commit; if it fails, the sweep publishes them.
    """
    result = _lock(delivery_ids, statuses=REPLAYABLE_STATUSES)
    now = timezone.now()
    Delivery.objects.filter(id__in=[d.id for d in result.done]).update(
        status=DeliveryStatus.QUEUED, status_changed_at=now, budget_attempts=0, next_attempt_at=None,
        recheck_at=queued_recheck_at(now),
    )
    _record(result.done, OperatorActionKind.REPLAY, actor=actor, actor_label=actor_label, note=note)
    deliveries_publish_on_commit([delivery_message(d, priority=d.notification.priority) for d in result.done])
    return result


@transaction.atomic
def dead_letters_discard(*, delivery_ids: Iterable, actor=None, actor_label: str = "", note: str = "") -> OperatorActionResult:
    """Take dead deliveries out of the dead-letter queue for good; they stay `dead`."""
    result = _lock(delivery_ids, statuses=(DeliveryStatus.DEAD,))
    Delivery.objects.filter(id__in=[d.id for d in result.done]).update(discarded_at=timezone.now())
    _record(result.done, OperatorActionKind.DISCARD, actor=actor, actor_label=actor_label, note=note)
    return result


def _lock(delivery_ids: Iterable, *, statuses) -> OperatorActionResult:
    ids = {str(i) for i in delivery_ids}
    # Locked, so that two operators (or an operator and a worker) cannot act on one twice.
    found = list(
        Delivery.objects.select_for_update(of=("self",)).select_related("notification")
        .filter(id__in=ids).order_by("status_changed_at", "id")
    )
    result = OperatorActionResult()
    for delivery in found:
        if delivery.status in statuses and delivery.discarded_at is None:
            result.done.append(delivery)
        else:
            result.skipped[str(delivery.id)] = "discarded" if delivery.discarded_at else delivery.status
    for missing in ids - {str(d.id) for d in found}:
        result.skipped[missing] = "not found"
    return result


def _record(deliveries: list[Delivery], action: str, *, actor, actor_label: str, note: str) -> None:
    label = actor_label or (actor.get_username() if actor is not None else "")
    DeliveryOperatorAction.objects.bulk_create(
        DeliveryOperatorAction(delivery=d, action=action, actor=actor, actor_label=label, previous_status=d.status,
                               note=note)
        for d in deliveries
    )
    # The action as a whole, with how many it touched (and how many asked for were left alone).
    audit_record(action=f"dead_letters.{action}", target="notifications.delivery", count=len(deliveries), actor=actor,
                 actor_label=label, ids=[d.id for d in deliveries], note=note)


# --- The broker's dead-letter queues ---------------------------------------------------------------


@dataclass(frozen=True)
class BrokerDeadLetter:
    """One message RabbitMQ dead-lettered, as read from notifications.<channel>.dead."""

    queue: str
    original_queue: str
    task: str
    task_id: str
    args: list
    reason: str  # RabbitMQ's: rejected, expired, maxlen, delivery_limit
    dead_at: datetime | None
    times: int  # how often it was dead-lettered from that queue

    @property
    def delivery_id(self) -> str:
        return str(self.args[0]) if self.args else ""


def broker_dead_letters(
    *, action: str = "list", channel: str = "", since: datetime | None = None, ids: Iterable[str] = (),
    dry_run: bool = False, limit: int = 1000, actor_label: str = "",
) -> list[BrokerDeadLetter]:
    """List (action "list"), requeue ("replay") or drop ("discard") broker dead letters.

    Returns the messages that matched the filters (`ids` match the delivery id the message
    carries, or its task id). A replayed message goes back to the queue it was dead-lettered
    from, confirmed by the broker before it leaves the dead-letter queue. Messages not acted on
    stay where they were: they are read unacknowledged and returned when the channel closes.
    """
    from celery_app import app

    if action not in ("list", "replay", "discard"):
        raise ValueError(f"unknown action {action!r}")
    wanted_ids = {str(i) for i in ids}
    queues = [q for q in settings.NOTIFIER_DEAD_LETTER_QUEUES if not channel or q.name == dead_letter_queue_name(channel)]
    matched: list[BrokerDeadLetter] = []
    with app.connection_for_write() as connection, connection.channel() as channel_:
        producer = Producer(channel_)
        for queue in queues:
            bound = queue(channel_)
            bound.declare()  # exists once a worker has started; declaring makes listing never fail
            while len(matched) < limit:
                message = bound.get(no_ack=False, accept=["json"])
                if message is None:
                    break
                letter = _broker_dead_letter(queue.name, message)
                if not _matches(letter, since=since, ids=wanted_ids):
                    continue
                matched.append(letter)
                if dry_run or action == "list":
                    continue
                if action == "replay":
                    producer.publish(
                        message.body, exchange="", routing_key=letter.original_queue, headers=message.headers,
                        content_type=message.content_type, content_encoding=message.content_encoding,
                        priority=message.properties.get("priority"), correlation_id=letter.task_id or None,
                        delivery_mode=2,
                    )
                message.ack()
    if action != "list" and not dry_run:
        audit_record(action=f"broker_dead_letters.{action}", target="broker.message", count=len(matched),
                     actor_label=actor_label, ids=[letter.task_id for letter in matched], channel=channel)
    return matched


def _broker_dead_letter(queue: str, message) -> BrokerDeadLetter:
    headers = message.headers or {}
    deaths = headers.get("x-death") or [{}]
    death = deaths[0]  # the most recent dead-lettering comes first
    try:
        body = json.loads(message.body)
        args = list(body[0]) if isinstance(body, list) and body else []
    except (TypeError, ValueError):
        args = []
    dead_at = death.get("time")
    if isinstance(dead_at, datetime) and timezone.is_naive(dead_at):
        dead_at = dead_at.replace(tzinfo=UTC)
    return BrokerDeadLetter(
        queue=queue,
        original_queue=death.get("queue") or dead_letter_origin(queue),
        task=str(headers.get("task", "")),
        task_id=str(headers.get("id") or message.properties.get("correlation_id") or ""),
        args=args,
        reason=str(death.get("reason", "")),
        dead_at=dead_at if isinstance(dead_at, datetime) else None,
        times=int(death.get("count", 1)),
    )


def _matches(letter: BrokerDeadLetter, *, since: datetime | None, ids: set[str]) -> bool:
    if ids and letter.delivery_id not in ids and letter.task_id not in ids:
        return False
    if since is not None and (letter.dead_at is None or letter.dead_at < since):
        return False
    return True
