"""Recording what a send led to: the attempt row and the delivery's new state, for a whole batch.

A batch of sends ends in one transaction that inserts every attempt and updates every delivery
(a handful of queries, however many deliveries). The provider may already hold the messages by
then, so a database error here must not lead to sending again: the write is retried for as long
as this worker's claim lasts, and past that the deliveries stay `sending` for the sweep (the one
documented window for a duplicate).
"""

import functools
import logging
import math
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction

from apps.channels.base import ProviderError, SendResult, TransientProviderError
from apps.channels.registry import max_attempts
from apps.core.instances import instance_new
from apps.core.prepared import prepared_cursor
from apps.core.rows_insert import rows_insert
from apps.notifications.delivery.clock import DbClock
from apps.notifications.metrics import attempts_observe
from apps.notifications.models import AttemptOutcome, Delivery, DeliveryAttempt, DeliveryStatus
from apps.notifications.outbox.status_events import status_change, status_events_record, status_hooked
from apps.notifications.workflow_hooks import deliveries_settled

logger = logging.getLogger(__name__)

# Every field an outcome may change, written for the whole batch by one bulk UPDATE.
_STATE_FIELDS = (
    "status", "status_changed_at", "next_attempt_at", "recheck_at", "last_error_code", "last_error", "sent_at",
    "provider_message_id",
)
# Waits between tries of a failed write: short at first, so a database that blinked costs little.
_RECORD_RETRY_FIRST_SECONDS = 0.2
_RECORD_RETRY_MAX_SECONDS = 5.0


@dataclass(frozen=True)
class SendOutcome:
    status: str
    # Seconds until the next attempt, when the worker should schedule it itself (a countdown
    # retry); None when there is nothing to schedule or the sweep will publish it when due.
    retry_in: float | None = None


@dataclass
class Attempted:
    """One send of a batch, done but not yet recorded."""

    delivery: Delivery
    attempt: DeliveryAttempt
    state: dict = field(default_factory=dict)  # the delivery's new field values
    outcome: SendOutcome | None = None
    receipt_expected: bool = False


def retry_delay(*, attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait after the given failed attempt (1-based): exponential, with equal jitter.

    Half of each step is fixed and half random, so delays never shrink from one attempt to the
    next (full jitter can draw a shorter wait than the last) while retries still spread out.
    The cap applies after the jitter: at the cap the delay stops growing, and the spread the
    earlier jitter gave a burst of retries carries on. A provider's Retry-After is honoured
    when longer, up to NOTIFIER_MAX_RETRY_AFTER_SECONDS.
    """
    step = settings.NOTIFIER_RETRY_BACKOFF_BASE_SECONDS * 2 ** min(attempt - 1, 32)
    delay = min(step / 2 + random.uniform(0, step / 2), settings.NOTIFIER_RETRY_BACKOFF_MAX_SECONDS)
    return max(delay, _provider_wait(retry_after))


def _provider_wait(retry_after: float | None) -> float:
    # Backends cap what they parse, but whatever one passes on must not overflow the datetime
    # arithmetic after the send: that runs outside the send's error handling, and would leave
    # the delivery `sending` with this attempt's outcome (an FCM device that got it) unrecorded.
    if retry_after is None or math.isnan(retry_after):
        return 0.0
    return min(max(retry_after, 0.0), settings.NOTIFIER_MAX_RETRY_AFTER_SECONDS)


def _attempt(delivery, *, outcome, started_at, started, result=None, error=None, next_attempt_at=None) -> DeliveryAttempt:
    answer = result or error
    return instance_new(  # DeliveryAttempt(...) by the positional path: half its CPU (apps/core/instances.py)
        DeliveryAttempt,
        delivery=delivery,
        number=delivery.attempt_count,
        started_at=started_at,
        duration_ms=int((time.monotonic() - started) * 1000),
        outcome=outcome,
        provider=getattr(answer, "provider", ""),
        passed_over=[passed.as_dict() for passed in getattr(answer, "passed_over", ())],
        provider_message_id=result.provider_message_id if result else "",
        provider_response=(result.response if result else error.response) or {},
        error_code=error.code if error else "",
        error_message=error.message if error else "",
        next_attempt_at=next_attempt_at,
    )


def attempted_sent(delivery, result: SendResult, *, clock: DbClock, started_at, started) -> Attempted:
    now = clock.now()
    return Attempted(
        delivery=delivery,
        attempt=_attempt(delivery, outcome=AttemptOutcome.SENT, started_at=started_at,
                         started=started, result=result),
        state=_state(delivery, status=DeliveryStatus.SENT, status_changed_at=now, sent_at=now,
                     provider_message_id=result.provider_message_id, next_attempt_at=None, recheck_at=None,
                     last_error_code="", last_error=""),
        outcome=SendOutcome(status=DeliveryStatus.SENT),
        receipt_expected=result.receipt_expected,
    )


def attempted_final(delivery, error: ProviderError, *, outcome, status, clock: DbClock, started_at,
                    started) -> Attempted:
    return Attempted(
        delivery=delivery,
        attempt=_attempt(delivery, outcome=outcome, started_at=started_at, started=started, error=error),
        state=_state(delivery, status=status, status_changed_at=clock.now(), next_attempt_at=None, recheck_at=None,
                     last_error_code=error.code, last_error=error.message),
        outcome=SendOutcome(status=status),
    )


def attempted_transient(delivery, error: TransientProviderError, *, clock: DbClock, started_at,
                        started) -> Attempted:
    if delivery.budget_attempts >= max_attempts(delivery.channel):
        return attempted_final(delivery, error, outcome=AttemptOutcome.TRANSIENT_ERROR, status=DeliveryStatus.DEAD,
                               clock=clock, started_at=started_at, started=started)
    delay = retry_delay(attempt=delivery.budget_attempts, retry_after=error.retry_after)
    now = clock.now()
    next_attempt_at = now + timedelta(seconds=delay)
    by_countdown = delay <= settings.NOTIFIER_MAX_COUNTDOWN_SECONDS
    return Attempted(
        delivery=delivery,
        attempt=_attempt(delivery, outcome=AttemptOutcome.TRANSIENT_ERROR, started_at=started_at,
                         started=started, error=error, next_attempt_at=next_attempt_at),
        state=_state(delivery, status=DeliveryStatus.RETRYING, status_changed_at=now, next_attempt_at=next_attempt_at,
                     recheck_at=_retry_recheck_at(next_attempt_at, by_countdown=by_countdown),
                     last_error_code=error.code, last_error=error.message),
        outcome=SendOutcome(status=DeliveryStatus.RETRYING, retry_in=delay if by_countdown else None),
    )


def _state(delivery: Delivery, **changes) -> dict:
    # The bulk UPDATE writes every state field; the ones this outcome leaves alone keep their value.
    return {name: changes.get(name, getattr(delivery, name)) for name in _STATE_FIELDS}


def _retry_recheck_at(next_attempt_at: datetime, *, by_countdown: bool) -> datetime:
    # A countdown message is on its way: the sweep steps in only if it is clearly lost. A wait
    # too long for a countdown (RabbitMQ's consumer_timeout) is the sweep's to publish when due.
    if by_countdown:
        return next_attempt_at + timedelta(seconds=settings.NOTIFIER_RETRY_GRACE_SECONDS)
    return next_attempt_at


def attempts_record(*, attempted: list[Attempted], give_up_at: float) -> list[Attempted]:
    """Record a batch's attempts and new states; return those recorded.

    A lost connection is retried (the database restarting, failing over) until `give_up_at`
    (time.monotonic()), which the caller sets inside its claim: past it, the sweep may already
    be taking the deliveries back. Then they stay `sending`, and the sweep's deadline sends them
    again after a `worker_lost` attempt, the documented window for a duplicate.
    """
    if not attempted:
        return []
    wait = _RECORD_RETRY_FIRST_SECONDS
    while True:
        try:
            recorded = _record(attempted)
        except (OperationalError, InterfaceError):
            connection.close_if_unusable_or_obsolete()
            if time.monotonic() + wait > give_up_at:
                logger.exception("could not record %d attempts; the sweep takes the deliveries back",
                                 len(attempted))
                return []
            logger.warning("could not record %d attempts; trying again in %.1fs", len(attempted), wait,
                           exc_info=True)
            time.sleep(wait)
            wait = min(wait * 2, _RECORD_RETRY_MAX_SECONDS)
        except DatabaseError:
            # Not the connection: the same write would fail again. Leave them to the sweep.
            logger.exception("could not record %d attempts; the sweep takes the deliveries back", len(attempted))
            return []
        else:
            # Counted once recorded: the API and /metrics report the same events.
            attempts_observe(recorded)
            return recorded


def _record(attempted: list[Attempted]) -> list[Attempted]:
    """One transaction: attempts inserted, deliveries updated, only where this worker's claim holds.

    The claim holds only while the delivery is still `sending` under this attempt's number. A
    send that outlived the sending deadline was taken back by the sweep, which recorded this
    attempt as lost and queued the delivery again: writing now would overwrite what happened
    since. (The task's hard time limit is shorter than that deadline, so this is a safeguard.)

    A cancel recorded while the attempt ran (`cancel_requested_at`) wins over anything but `sent`:
    the delivery ends `cancelled` and is not retried. The rows are locked first, so a cancel
    landing meanwhile waits for this commit and then finds the delivery final.
    """
    with transaction.atomic():
        held = _claims_held([a.delivery.id for a in attempted])
        kept = []
        for item in attempted:
            attempt_count, cancel_requested_at = held.get(item.delivery.id, (None, None))
            if attempt_count == item.delivery.attempt_count:
                if cancel_requested_at is not None and item.state["status"] != DeliveryStatus.SENT:
                    _cancel_instead(item)
                kept.append(item)
            else:
                logger.warning("delivery %s was taken back by the sweep before attempt %s was recorded (%s)",
                               item.delivery.id, item.attempt.number, item.attempt.outcome)
        if kept:
            # One statement: bulk_create prepared and quoted each of a batch's ~700 values in
            # Python, and read back keys nothing here uses.
            rows_insert(DeliveryAttempt, [item.attempt for item in kept], keys_unread=True)
            for item in kept:
                for name, value in item.state.items():
                    setattr(item.delivery, name, value)
            _deliveries_update([item.delivery for item in kept])
            # Workflow runs waiting on these deliveries look again once this commits.
            deliveries_settled([item.delivery.notification_id for item in kept
                                if item.delivery.notification.workflow_key
                                and item.state["status"] != DeliveryStatus.RETRYING])
            # The events of the reported outcomes, in the same transaction (nothing for projects
            # without a status_webhook_url: their rows are already loaded with the claim).
            status_events_record(changes=[
                status_change(item.delivery, previous_status=DeliveryStatus.SENDING)
                for item in kept if status_hooked(item.delivery.notification.project)
            ])
    return kept


def _cancel_instead(item: Attempted) -> None:
    # The attempt stays as it happened (its error is the provider's answer); the delivery ends.
    item.state.update(status=DeliveryStatus.CANCELLED, next_attempt_at=None, recheck_at=None)
    item.outcome = SendOutcome(status=DeliveryStatus.CANCELLED)


def _claims_held(delivery_ids: list) -> dict:
    """Lock the batch's deliveries still `sending`: id → (attempt_count, cancel_requested_at).

    On PostgreSQL the ids go as one array (`= ANY`): a statement of fixed text, prepared
    (apps/core/prepared.py), where the ORM's `IN (%s, …)` of a batch of 50 is parsed on every
    batch (psycopg caches no statement of more than 50 parameters) and compiled by the ORM too.
    """
    if connection.vendor != "postgresql":
        return {
            delivery_id: (attempt_count, cancel_requested_at)
            for delivery_id, attempt_count, cancel_requested_at in Delivery.objects.select_for_update()
            .filter(id__in=delivery_ids, status=DeliveryStatus.SENDING)
            .values_list("id", "attempt_count", "cancel_requested_at")
        }
    with prepared_cursor(connection) as cursor:
        cursor.execute(_claims_held_sql(), [delivery_ids, DeliveryStatus.SENDING])
        return {delivery_id: (attempt_count, cancel_requested_at)
                for delivery_id, attempt_count, cancel_requested_at in cursor.fetchall()}


@functools.cache
def _claims_held_sql() -> str:
    quote, meta = connection.ops.quote_name, Delivery._meta
    columns = ", ".join(quote(meta.get_field(name).column) for name in ("id", "attempt_count", "cancel_requested_at"))
    return (f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {quote(meta.pk.column)} = ANY(%s::uuid[])"
            f" AND {quote(meta.get_field('status').column)} = %s FOR UPDATE")


def _deliveries_update(deliveries: list[Delivery]) -> None:
    """Write each delivery's state fields: one UPDATE … FROM unnest(one array per column) on
    PostgreSQL.

    Django's bulk_update builds a CASE expression per field and row, which costs milliseconds of
    CPU per delivery in Python. A VALUES list costs microseconds but has a placeholder per row and
    field (450 for a batch of 50): psycopg parses and quotes each on every batch, and PostgreSQL
    parses and plans as many; the arrays make it nine, in a statement of fixed text, prepared
    (apps/core/prepared.py). Other databases (SQLite, the embedded mode) use bulk_update.
    """
    if connection.vendor != "postgresql":
        Delivery.objects.bulk_update(deliveries, fields=_STATE_FIELDS)
        return
    fields = [Delivery._meta.get_field(name) for name in _STATE_FIELDS]
    params = [[delivery.id for delivery in deliveries]]
    params.extend([field.get_db_prep_save(getattr(delivery, field.attname), connection) for delivery in deliveries]
                  for field in fields)
    with prepared_cursor(connection) as cursor:
        cursor.execute(_deliveries_update_sql(), params)


@functools.cache
def _deliveries_update_sql() -> str:
    fields = [Delivery._meta.get_field(name) for name in _STATE_FIELDS]
    quote = connection.ops.quote_name
    arrays = ", ".join(["%s::uuid[]", *(f"%s::{f.db_type(connection)}[]" for f in fields)])
    columns = ", ".join(quote(f.column) for f in fields)
    assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in fields)
    table = quote(Delivery._meta.db_table)
    return f"UPDATE {table} SET {assignments} FROM unnest({arrays}) AS v(id, {columns}) WHERE {table}.id = v.id"
