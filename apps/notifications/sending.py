"""Sending one delivery: claim it, render, hand it to the channel backend, record what happened.

Every path ends in one transaction that writes the attempt row and the delivery's new state.
A worker killed anywhere in between leaves the delivery `sending` with a `recheck_at` deadline
past the task's hard time limit; the sweep then takes it back (see sweep.py).
"""

import logging
import math
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.channels.base import PermanentProviderError, ProviderError, ProviderResult, TransientProviderError
from apps.channels.registry import ChannelDisabled, backend_get, backends_reset, max_attempts
from apps.notifications.models import (
    CLAIMABLE_STATUSES,
    AttemptOutcome,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
)
from apps.notifications.receipts import early_receipt_apply
from apps.templates.rendering import TemplateRenderError
from apps.templates.services import template_version_render

logger = logging.getLogger(__name__)

# A message may arrive a little before its countdown on another worker's clock.
_CLOCK_SKEW = timedelta(seconds=1)


class NoSuchDelivery(Exception):
    """The message names no delivery (a malformed id, or a row that does not exist).

    Nothing in the database can recover it, so the task rejects it into the broker's
    dead-letter queue, where an operator can look at it (`manage.py dlq list --broker`).
    """


@dataclass(frozen=True)
class SendOutcome:
    status: str
    # Seconds until the next attempt, when the worker should schedule it itself (a countdown
    # retry); None when there is nothing to schedule or the sweep will publish it when due.
    retry_in: float | None = None


def delivery_claim(*, delivery_id: str) -> bool:
    """Take the delivery for this worker, atomically; False if it is not ours to send.

    The conditional UPDATE is what makes a redelivered or duplicate message harmless: only one
    worker can move a delivery out of queued/retrying, and a retry that is not yet due is left
    to its own countdown message.
    """
    now = timezone.now()
    claimed = Delivery.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + _CLOCK_SKEW),
        id=delivery_id,
        status__in=CLAIMABLE_STATUSES,
    ).update(
        status=DeliveryStatus.SENDING,
        status_changed_at=now,
        attempt_count=F("attempt_count") + 1,
        budget_attempts=F("budget_attempts") + 1,
        recheck_at=now + timedelta(seconds=settings.NOTIFIER_SENDING_TIMEOUT_SECONDS),
    )
    return claimed == 1


def delivery_send(*, delivery_id: str) -> SendOutcome | None:
    """Send the delivery once; None if it was not claimable (already sent, cancelled, taken...).

    Raises NoSuchDelivery for a message that does not name a delivery.
    """
    try:
        delivery_id = str(uuid.UUID(str(delivery_id)))
    except ValueError:
        raise NoSuchDelivery(f"{delivery_id!r} is not a delivery id") from None
    if not delivery_claim(delivery_id=delivery_id):
        if not Delivery.objects.filter(id=delivery_id).exists():
            raise NoSuchDelivery(f"no delivery {delivery_id}")
        logger.info("delivery %s is not claimable; message dropped", delivery_id)
        return None

    delivery = Delivery.objects.select_related(
        "notification__recipient", "notification__project", "notification__template_version"
    ).get(id=delivery_id)
    started_at = timezone.now()
    started = time.monotonic()
    try:
        result = _send(delivery)
    except TransientProviderError as exc:
        return _record_transient_error(delivery, exc, started_at=started_at, started=started)
    except SoftTimeLimitExceeded:
        # The provider hung past the task's soft limit: whether it took the message is unknown,
        # like any timeout, so it is retried. The backend's connection is mid-conversation;
        # drop it so the next send in this process starts on a fresh one.
        backends_reset()
        error = TransientProviderError("The provider did not answer within the time limit.", code="timeout")
        return _record_transient_error(delivery, error, started_at=started_at, started=started)
    except PermanentProviderError as exc:
        return _record_final_error(
            delivery, exc, outcome=AttemptOutcome.PERMANENT_ERROR, status=DeliveryStatus.FAILED,
            started_at=started_at, started=started,
        )
    except ChannelDisabled as exc:
        # Not this delivery's fault, and not fixable by waiting: dead, to be replayed once the
        # channel is configured again (a channel may be turned off with deliveries still queued).
        return _record_final_error(
            delivery, ProviderError(exc.message, code=exc.code),
            outcome=AttemptOutcome.INTERNAL_ERROR, status=DeliveryStatus.DEAD, started_at=started_at, started=started,
        )
    except DatabaseError:
        raise  # cannot record anything now; the sweep takes the delivery back at recheck_at
    except Exception as exc:
        # A bug of ours, not the provider's answer: stop retrying, park it in the dead-letter
        # queue with the reason so an operator can replay it after the fix, and let it be logged.
        _record_final_error(
            delivery, ProviderError(f"{type(exc).__name__}: {exc}", code="internal_error"),
            outcome=AttemptOutcome.INTERNAL_ERROR, status=DeliveryStatus.DEAD,
            started_at=started_at, started=started,
        )
        raise
    return _record_sent(delivery, result, started_at=started_at, started=started)


def _send(delivery: Delivery) -> ProviderResult:
    notification = delivery.notification
    if notification.recipient is None:
        raise PermanentProviderError("The user was deleted before this was sent.", code="user_deleted")
    backend = backend_get(delivery.channel)
    try:
        content = template_version_render(
            version=notification.template_version, channel=delivery.channel, data=notification.data
        )
    except TemplateRenderError as exc:
        # The template is wrong for this data (a filter given an argument it cannot use, ...):
        # the same version renders the same way on every retry.
        part = getattr(exc, "path", "")  # which part failed, e.g. "subject"
        where = f" ({delivery.channel}.{part})" if part else ""
        raise PermanentProviderError(f"The template could not be rendered{where}: {exc}", code="template_error") from exc
    return backend.send(delivery, content)


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
    return DeliveryAttempt(
        delivery=delivery,
        number=delivery.attempt_count,
        started_at=started_at,
        duration_ms=int((time.monotonic() - started) * 1000),
        outcome=outcome,
        provider_message_id=result.provider_message_id if result else "",
        provider_response=(result.response if result else error.response) or {},
        error_code=error.code if error else "",
        error_message=error.message if error else "",
        next_attempt_at=next_attempt_at,
    )


def _save(delivery: Delivery, attempt: DeliveryAttempt, **fields) -> bool:
    """Write the attempt and the delivery's new state; False if this worker's claim had lapsed.

    The claim holds only while the delivery is still `sending` under this attempt's number. A
    send that outlived the sending deadline was taken back by the sweep, which recorded this
    attempt as lost and queued the delivery again: writing now would overwrite what happened
    since. (The task's hard time limit is shorter than that deadline, so this is a safeguard.)

    A cancel recorded while this attempt ran wins over anything but `sent`: the delivery ends
    `cancelled` and is not retried. The row is locked first, so a cancel landing meanwhile waits
    for this commit and then finds the delivery final.
    """
    fields["status_changed_at"] = timezone.now()
    with transaction.atomic():
        claim = Delivery.objects.select_for_update().filter(
            id=delivery.id, status=DeliveryStatus.SENDING, attempt_count=delivery.attempt_count
        ).values("cancel_requested_at").first()
        if claim is None:
            logger.warning("delivery %s was taken back by the sweep before attempt %s was recorded (%s)",
                           delivery.id, attempt.number, attempt.outcome)
            return False
        if claim["cancel_requested_at"] is not None and fields["status"] != DeliveryStatus.SENT:
            fields.update(status=DeliveryStatus.CANCELLED, next_attempt_at=None, recheck_at=None)
        Delivery.objects.filter(id=delivery.id).update(**fields)
        attempt.save()
    for name, value in fields.items():
        setattr(delivery, name, value)
    return True


def _record_sent(delivery, result: ProviderResult, *, started_at, started) -> SendOutcome | None:
    attempt = _attempt(delivery, outcome=AttemptOutcome.SENT, started_at=started_at, started=started, result=result)
    saved = _save(
        delivery, attempt,
        status=DeliveryStatus.SENT, sent_at=timezone.now(), provider_message_id=result.provider_message_id,
        next_attempt_at=None, recheck_at=None, last_error_code="", last_error="",
    )
    if not saved:
        return None
    if result.receipt_expected:
        early_receipt_apply(delivery)  # after the commit above: see delivery_report_receipt
    return SendOutcome(status=DeliveryStatus.SENT)


def _record_final_error(delivery, error: ProviderError, *, outcome, status, started_at, started) -> SendOutcome | None:
    attempt = _attempt(delivery, outcome=outcome, started_at=started_at, started=started, error=error)
    saved = _save(
        delivery, attempt,
        status=status, next_attempt_at=None, recheck_at=None, last_error_code=error.code, last_error=error.message,
    )
    if not saved:
        return None
    logger.warning("delivery %s %s: %s", delivery.id, delivery.status, error.message)
    return SendOutcome(status=delivery.status)


def _record_transient_error(delivery, error: TransientProviderError, *, started_at, started) -> SendOutcome | None:
    if delivery.budget_attempts >= max_attempts(delivery.channel):
        return _record_final_error(
            delivery, error, outcome=AttemptOutcome.TRANSIENT_ERROR, status=DeliveryStatus.DEAD,
            started_at=started_at, started=started,
        )
    delay = retry_delay(attempt=delivery.budget_attempts, retry_after=error.retry_after)
    next_attempt_at = timezone.now() + timedelta(seconds=delay)
    by_countdown = delay <= settings.NOTIFIER_MAX_COUNTDOWN_SECONDS
    attempt = _attempt(delivery, outcome=AttemptOutcome.TRANSIENT_ERROR, started_at=started_at, started=started,
                       error=error, next_attempt_at=next_attempt_at)
    saved = _save(
        delivery, attempt,
        status=DeliveryStatus.RETRYING, next_attempt_at=next_attempt_at,
        recheck_at=_retry_recheck_at(next_attempt_at, by_countdown=by_countdown),
        last_error_code=error.code, last_error=error.message,
    )
    if not saved:
        return None
    if delivery.status != DeliveryStatus.RETRYING:
        return SendOutcome(status=delivery.status)  # cancelled meanwhile: nothing to schedule
    return SendOutcome(status=DeliveryStatus.RETRYING, retry_in=delay if by_countdown else None)


def _retry_recheck_at(next_attempt_at: datetime, *, by_countdown: bool) -> datetime:
    # A countdown message is on its way: the sweep steps in only if it is clearly lost. A wait
    # too long for a countdown (RabbitMQ's consumer_timeout) is the sweep's to publish when due.
    if by_countdown:
        return next_attempt_at + timedelta(seconds=settings.NOTIFIER_RETRY_GRACE_SECONDS)
    return next_attempt_at
