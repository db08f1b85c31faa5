"""Sending deliveries: claim a batch, render and send each, record what happened in one go.

A task carries the ids of one or more deliveries of one channel. They are claimed and loaded with
one conditional UPDATE … RETURNING (claim.py: only deliveries still queued/retrying and due come
back, so a redelivered or duplicate message does nothing), sent one by one on the backend's
connection, or the channel's SEND_CONCURRENCY at a time on send threads (send_pool.py), each with
its own outcome (one refused address does not fail the others), and the attempts and new states
of the whole batch are written by one transaction (recording.py).

A worker killed anywhere in between leaves its deliveries `sending` with a `recheck_at`
deadline past the task's hard time limit; the sweep then takes them back (see sweep.py).
"""

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.db.models import F
from django.db.models.functions import Now

from apps.channels.base import (
    ChannelMessage,
    PermanentProviderError,
    ProviderError,
    SendResult,
    TransientProviderError,
)
from apps.channels.failover import channel_send
from apps.channels.registry import ChannelDisabled, backends_reset, providers_get, send_concurrency
from apps.core.correlation import correlation_bound
from apps.core.ids import uuids_split
from apps.notifications.delivery.batch_renders import BatchRenders
from apps.notifications.delivery.channel_messages import (
    BatchAddresses,
    actions_apply,
    batch_addresses_load,
    channel_message_build,
)
from apps.notifications.delivery.claim import deliveries_claim_load
from apps.notifications.delivery.clock import DbClock
from apps.notifications.delivery.receipts import early_receipt_apply
from apps.notifications.delivery.recording import (
    Attempted,
    SendOutcome,
    attempted_final,
    attempted_sent,
    attempted_transient,
    attempts_record,
    retry_delay,
)
from apps.notifications.delivery.send_pool import BatchAnswers, SendCall, send_pool, send_pools_discard
from apps.notifications.metrics import provider_latency
from apps.notifications.models import AttemptOutcome, Delivery, DeliveryStatus, Notification
from apps.templates.rendering import TemplateRenderError
from apps.users.preference_links import preferences_link_issue

__all__ = ["DatabaseUnavailable", "NoSuchDelivery", "SendOutcome", "deliveries_send", "delivery_send", "retry_delay"]

logger = logging.getLogger(__name__)

# The outcome of a finished send is recorded until this long before the sweep may take the
# delivery back; the task's soft time limit usually ends the wait first.
_RECORD_MARGIN_SECONDS = 15.0


class NoSuchDelivery(Exception):
    """The message names no delivery (a malformed id, or a row that does not exist).

    Nothing in the database can recover it, so the task rejects it into the broker's
    dead-letter queue, where an operator can look at it (`manage.py dlq list --broker`).
    """


class DatabaseUnavailable(Exception):
    """The database could not be reached to claim: nothing was claimed or sent; try again soon."""


@dataclass
class BatchResult:
    outcomes: dict[str, SendOutcome] = field(default_factory=dict)  # delivery id → what happened
    unknown: list[str] = field(default_factory=list)  # ids naming no delivery
    # Recorded deliveries that wait for a countdown retry: (delivery, seconds to wait).
    retries: list[tuple[Delivery, float]] = field(default_factory=list)


def delivery_send(*, delivery_id: str) -> SendOutcome | None:
    """Send one delivery; None if it was not claimable (already sent, cancelled, taken...).

    Raises NoSuchDelivery for a message that does not name a delivery.
    """
    result = deliveries_send(delivery_ids=[delivery_id])
    if result.unknown:
        raise NoSuchDelivery(f"no delivery {delivery_id!r}")
    return next(iter(result.outcomes.values()), None)


def deliveries_send(*, delivery_ids: Sequence[str]) -> BatchResult:
    """Send each claimable delivery among `delivery_ids` once, and record every outcome.

    Raises DatabaseUnavailable when the claim cannot reach the database (nothing was sent).
    """
    result = BatchResult()
    ids, malformed = uuids_split(delivery_ids)
    result.unknown.extend(malformed)
    claimed, clock = deliveries_claim(delivery_ids=ids)
    give_up_at = time.monotonic() + settings.NOTIFIER_SENDING_TIMEOUT_SECONDS - _RECORD_MARGIN_SECONDS
    attempted = _send_each(claimed, clock=clock)
    recorded = attempts_record(attempted=attempted, give_up_at=give_up_at)
    for item in recorded:
        result.outcomes[str(item.delivery.id)] = item.outcome
        if item.receipt_expected:
            early_receipt_apply(item.delivery)  # after the commit above: see delivery_report_receipt
        if item.outcome.retry_in is not None:
            result.retries.append((item.delivery, item.outcome.retry_in))
    not_claimed = set(ids) - {str(d.id) for d in claimed}
    if not_claimed:
        existing = {str(i) for i in Delivery.objects.filter(id__in=not_claimed).values_list("id", flat=True)}
        result.unknown.extend(sorted(not_claimed - existing))
        for delivery_id in sorted(existing):
            logger.info("delivery %s is not claimable; message dropped", delivery_id)
    return result


def deliveries_claim(*, delivery_ids: Sequence[str]) -> tuple[list[Delivery], DbClock | None]:
    """Take the claimable deliveries among `delivery_ids` for this worker, atomically, and load them
    (claim.py: only one worker can claim a delivery, and only while it is queued/retrying and due)."""
    try:
        claimed = deliveries_claim_load(delivery_ids)
    except (OperationalError, InterfaceError) as exc:
        connection.close_if_unusable_or_obsolete()
        raise DatabaseUnavailable(str(exc)) from exc
    if not claimed:
        return [], None
    # Every time the batch writes follows from the database's time at the claim.
    return claimed, DbClock(claimed[0].status_changed_at)


def _send_each(claimed: list[Delivery], *, clock: DbClock) -> list[Attempted]:
    # A batch starts no send past half the task's time limit: a slow provider then costs the
    # batch's tail a trip through the sweep, never a send outliving its claim (on the threads
    # pool, which has no time limits, this bound is the one that holds).
    stop_at = time.monotonic() + settings.NOTIFIER_SEND_TIME_LIMIT_SECONDS / 2
    addresses = batch_addresses_load(claimed)
    renders = BatchRenders()
    concurrency = send_concurrency(claimed[0].channel) if claimed else 1
    if concurrency > 1:
        return _send_concurrently(claimed, addresses, renders, clock=clock, stop_at=stop_at, concurrency=concurrency)
    attempted = []
    for index, delivery in enumerate(claimed):
        if index and time.monotonic() > stop_at:
            _out_of_time(claimed, index)
            break
        try:
            # Each send's log lines name the request that created its notification.
            with correlation_bound(delivery.notification.correlation_id):
                timing = _timing(clock)
                item = _outcome(delivery, timing, lambda d=delivery: _applied(
                    _provider_send, d.channel, _message(d, addresses, renders)))
                _attempt_log(item)
        except SoftTimeLimitExceeded:
            # The task's time is up: the sends not begun go back to `queued` uncounted, and the
            # sweep publishes them (recheck_at now) rather than this task overrunning its limit.
            _release(claimed[index + 1:])
            attempted.append(_timed_out(delivery, clock=clock))
            break
        if item is not None:
            attempted.append(item)
    return attempted


def _send_concurrently(claimed: list[Delivery], addresses: BatchAddresses, renders: BatchRenders, *,
                       clock: DbClock, stop_at: float, concurrency: int) -> list[Attempted]:
    """`concurrency` provider calls in flight at once on the process's send threads (send_pool.py),
    everything else on this thread: each delivery's message is built here while earlier ones are
    with the provider, and each answer is turned into its attempt here as it comes back."""
    threads = send_pool(concurrency)
    answers = BatchAnswers()
    attempted: list[Attempted] = []
    settled: set = set()  # the deliveries whose attempt is made (or that are left to the sweep)
    in_flight: dict[int, tuple[Delivery, dict, SendCall]] = {}  # by index in `claimed`
    taken = 0  # the deliveries taken in hand so far, in order

    def keep(delivery: Delivery, item: Attempted | None) -> None:
        _attempt_log(item)
        if item is not None:
            attempted.append(item)
        settled.add(delivery.id)

    def settle(index: int) -> None:
        delivery, timing, _ = in_flight[index]
        result, error = answers.by_key[index]
        if delivery.id not in settled:
            with correlation_bound(delivery.notification.correlation_id):
                keep(delivery, _outcome(delivery, timing, lambda: _applied(_answer, result, error)))
        # The answer first: a time limit striking between the two leaves a call in flight whose
        # delivery is settled, which the handler below skips.
        del answers.by_key[index]
        del in_flight[index]

    try:
        for index, delivery in enumerate(claimed):
            if taken and time.monotonic() > stop_at:
                break
            taken += 1
            timing = _timing(clock)
            with correlation_bound(delivery.notification.correlation_id):
                try:
                    message = _message(delivery, addresses, renders)
                except SoftTimeLimitExceeded:
                    raise
                except Exception as exc:  # this delivery's own failure, before any provider call
                    keep(delivery, _failed(delivery, exc, timing))
                    continue
            call = threads.start(answers, index, _provider_send_bound, delivery.notification.correlation_id,
                                 delivery.channel, message)
            in_flight[index] = (delivery, timing, call)
            if len(in_flight) >= concurrency:
                settle(answers.next_key())
        while in_flight:
            settle(answers.next_key())
    except SoftTimeLimitExceeded:
        # The task's time is up. What the provider answered is recorded; a call not begun goes
        # back to `queued` uncounted, like every delivery not yet taken in hand; a call under way,
        # or a delivery in hand when the limit struck (perhaps just handed to a thread), may or may
        # not have reached the provider: a timed-out attempt, retried.
        not_begun = [delivery for delivery, _, call in in_flight.values() if call.take()]
        # (A call the limit struck before it was noted in flight is unsure, answered or not.)
        for index in [index for index in list(answers.by_key) if index in in_flight]:
            with contextlib.suppress(SoftTimeLimitExceeded):  # raised by the call itself: unsure
                settle(index)
        skip = settled | {delivery.id for delivery in not_begun}
        unsure = [delivery for delivery in claimed[:taken] if delivery.id not in skip]
        send_pools_discard()  # its threads may be stuck mid-conversation: the next batch starts afresh
        attempted.extend(_timed_out(delivery, clock=clock) for delivery in unsure)
        _release(not_begun + claimed[taken:])
        return attempted
    if taken < len(claimed):
        _out_of_time(claimed, taken)
    return attempted


def _answer(result: SendResult | None, error: BaseException | None) -> SendResult:
    """A send thread's answer, as the call itself would have returned or raised it."""
    if error is not None:
        raise error
    return result


def _out_of_time(claimed: list[Delivery], index: int) -> None:
    logger.warning("batch out of time after %d sends; %d left to the sweep", index, len(claimed) - index)
    _release(claimed[index:])


def _timing(clock: DbClock) -> dict:
    return {"clock": clock, "started_at": clock.now(), "started": time.monotonic()}


def _outcome(delivery: Delivery, timing: dict, send: Callable[[], SendResult]) -> Attempted | None:
    """The attempt of `send()`, whose result is the provider's answer or whose error says why not."""
    try:
        result = send()
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:
        return _failed(delivery, exc, timing)
    return attempted_sent(delivery, result, **timing)


def _failed(delivery: Delivery, exc: Exception, timing: dict) -> Attempted | None:
    if isinstance(exc, TransientProviderError):
        return attempted_transient(delivery, exc, **timing)
    if isinstance(exc, PermanentProviderError):
        return attempted_final(delivery, exc, outcome=AttemptOutcome.PERMANENT_ERROR, status=DeliveryStatus.FAILED,
                               **timing)
    if isinstance(exc, ChannelDisabled):
        # Not this delivery's fault, and not fixable by waiting: dead, to be replayed once the
        # channel is configured again (a channel may be turned off with deliveries still queued).
        return attempted_final(delivery, ProviderError(exc.message, code=exc.code),
                               outcome=AttemptOutcome.INTERNAL_ERROR, status=DeliveryStatus.DEAD, **timing)
    if isinstance(exc, DatabaseError):
        # A backend that writes to our database (the inbox) could not: whether it stored the
        # message is unknown, so this delivery stays `sending` for the sweep; the others go on.
        logger.error("delivery %s: database error while sending; left to the sweep", delivery.id, exc_info=exc)
        return None
    # A bug of ours, not the provider's answer: stop retrying, park it in the dead-letter
    # queue with the reason so an operator can replay it after the fix, and log it.
    logger.error("delivery %s: internal error", delivery.id, exc_info=exc)
    return attempted_final(delivery, ProviderError(f"{type(exc).__name__}: {exc}", code="internal_error"),
                           outcome=AttemptOutcome.INTERNAL_ERROR, status=DeliveryStatus.DEAD, **timing)


def _attempt_log(item: Attempted | None) -> None:
    # One line per attempt, under the notification's correlation id; addresses in a provider's
    # answer are masked by the log formatter. A send is logged at DEBUG: its attempt row already
    # records it, and a formatted line per delivery cost the worker ~10% of its throughput.
    if item is None:
        return
    attempt, delivery = item.attempt, item.delivery
    if attempt.outcome == AttemptOutcome.SENT and not logger.isEnabledFor(logging.DEBUG):
        return  # the usual case: no line, so no fields to gather for it
    fields = {"delivery_id": str(delivery.id), "notification_id": str(delivery.notification_id),
              "channel": delivery.channel, "attempt": attempt.number, "outcome": attempt.outcome,
              "duration_ms": attempt.duration_ms}
    if attempt.outcome == AttemptOutcome.SENT:
        logger.debug("delivery %s attempt %d sent", delivery.id, attempt.number, extra=fields)
    else:
        logger.warning("delivery %s attempt %d: %s %s: %s", delivery.id, attempt.number, attempt.outcome,
                       attempt.error_code, attempt.error_message, extra={**fields, "error_code": attempt.error_code})


def _timed_out(delivery: Delivery, *, clock: DbClock) -> Attempted:
    # The provider hung past the task's soft limit: whether it took the message is unknown,
    # like any timeout, so it is retried. The backend's connection is mid-conversation; drop it
    # so the next send in this process starts on a fresh one.
    backends_reset()
    error = TransientProviderError("The provider did not answer within the time limit.", code="timeout")
    return attempted_transient(delivery, error, clock=clock, started_at=clock.now(), started=time.monotonic())


def _release(deliveries: list[Delivery]) -> None:
    """Give back claimed deliveries never attempted: `queued`, the claim's count undone."""
    if not deliveries:
        return
    Delivery.objects.filter(id__in=[d.id for d in deliveries], status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.QUEUED, status_changed_at=Now(), recheck_at=Now(),
        attempt_count=F("attempt_count") - 1, budget_attempts=F("budget_attempts") - 1,
    )


def _pipeline_values(notification: Notification, names: frozenset[str]) -> dict:
    """What the pipeline gives this recipient's templates among `names` (those the template uses and
    the data lacks: a value in the data wins, so a product with a preference page of its own links
    that one): for an email, `preferences_url`, the user's preference page (one signature)."""
    values = {}
    if "preferences_url" in names:
        values["preferences_url"], _ = preferences_link_issue(project_id=notification.project_id,
                                                              recipient_id=notification.recipient_id)
    return values


def _message(delivery: Delivery, addresses: BatchAddresses, renders: BatchRenders) -> ChannelMessage:
    """The delivery's rendered message (on the main thread: it reads the batch's rows and renders)."""
    notification = delivery.notification
    if notification.recipient is None:
        raise PermanentProviderError("The user was deleted before this was sent.", code="user_deleted")
    providers_get(delivery.channel)  # ChannelDisabled before rendering for a channel that may be gone
    try:
        content = renders.render(
            version=notification.template_version, channel=delivery.channel, data=notification.data,
            pipeline_values=lambda names: _pipeline_values(notification, names),
        )
    except TemplateRenderError as exc:
        # The template is wrong for this data (a filter given an argument it cannot use, ...):
        # the same version renders the same way on every retry.
        part = getattr(exc, "path", "")  # which part failed, e.g. "subject"
        where = f" ({delivery.channel}.{part})" if part else ""
        raise PermanentProviderError(f"The template could not be rendered{where}: {exc}", code="template_error") from exc
    return channel_message_build(delivery, content, addresses)


def _provider_send(channel: str, message: ChannelMessage) -> SendResult:
    """The provider call alone: the channel's providers in order (failover); on a send thread
    when the channel sends concurrently, so nothing here touches the database."""
    started = time.monotonic()
    try:
        return channel_send(channel, message)
    finally:
        provider_latency.labels(channel).observe(time.monotonic() - started)


def _provider_send_bound(correlation_id: str, channel: str, message: ChannelMessage) -> SendResult:
    with correlation_bound(correlation_id):  # a send thread's log lines name the request too
        return _provider_send(channel, message)


def _applied(send: Callable, *args) -> SendResult:
    """`send(*args)`'s result, with the actions the backend asked for carried out (on the main
    thread), whether the message went or not (e.g. a device gone for good)."""
    try:
        result = send(*args)
    except ProviderError as exc:
        actions_apply(exc.actions)
        raise
    actions_apply(result.actions)
    return result
