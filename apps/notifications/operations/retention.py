"""What the delivery log keeps past the retention period (the orchestration is apps/retention).

A delivery goes once it has been final for the period (`status_changed_at`), with its attempts
and operator actions. A dead letter not yet discarded stays whatever its age: it waits for an
operator, and once replayed or discarded it goes a period after that. A notification goes once
none of its deliveries is left, and a finished broadcast once none of its notifications is; with
them go their idempotency keys, which are therefore remembered for the retention period.
"""

from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet

from apps.core.batches import BatchDeletion, rows_delete_in_batches
from apps.notifications.models import (
    ACTIVE_STATUSES,
    Broadcast,
    BroadcastStatus,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Notification,
)
from apps.notifications.workflow_hooks import workflow_hooks

_UNFINISHED_BROADCASTS = (BroadcastStatus.PENDING, BroadcastStatus.RUNNING)


def _delivery_expired(*, before: datetime) -> Q:
    return (Q(status_changed_at__lt=before) & ~Q(status__in=ACTIVE_STATUSES)
            & (~Q(status=DeliveryStatus.DEAD) | Q(discarded_at__lt=before)))


def _kept_by_workflows(field: str) -> Q:
    """The notifications (by `field`) that open workflow runs still need: a run waiting 30 days
    reads its earlier deliveries when it wakes, and a digest its events' data when it closes."""
    hooks = workflow_hooks()
    kept = Q(pk__in=[])
    for notification_ids in hooks.notifications_kept() if hooks is not None else []:
        kept |= Q(**{f"{field}__in": notification_ids})
    return kept


def deliveries_expired(*, before: datetime) -> QuerySet:
    return Delivery.objects.filter(_delivery_expired(before=before)).exclude(_kept_by_workflows("notification_id"))


def notifications_expired(*, before: datetime) -> QuerySet:
    """Notifications created before `before` with no delivery that stays (none left, or all expired).
    Not those of a broadcast still fanning out, whose uniqueness per user guards against repeats,
    nor those an open workflow run still needs."""
    staying = Delivery.objects.filter(notification=OuterRef("pk")).exclude(_delivery_expired(before=before))
    return (Notification.objects.filter(created_at__lt=before).filter(~Exists(staying))
            .exclude(broadcast__status__in=_UNFINISHED_BROADCASTS).exclude(_kept_by_workflows("pk")))


def broadcasts_expired(*, before: datetime) -> QuerySet:
    staying = (Notification.objects.filter(broadcast=OuterRef("pk"))
               .exclude(pk__in=notifications_expired(before=before).values("pk")))
    return (Broadcast.objects.exclude(status__in=_UNFINISHED_BROADCASTS)
            .filter(Q(finished_at__lt=before) | Q(finished_at__isnull=True, created_at__lt=before))
            .filter(~Exists(staying)))


def delivery_log_expired_count(*, before: datetime) -> dict[str, int]:
    """What delivery_log_purge would delete now (attempts included), without deleting anything."""
    deliveries = deliveries_expired(before=before)
    return {
        "deliveries": deliveries.count(),
        "attempts": DeliveryAttempt.objects.filter(delivery__in=deliveries).count(),
        "notifications": notifications_expired(before=before).count(),
        "broadcasts": broadcasts_expired(before=before).count(),
    }


def delivery_log_purge(*, before: datetime, batch_size: int, deadline: float) -> BatchDeletion:
    """Delete, in batches, deliveries (then notifications, then broadcasts) expired before `before`,
    until done or time.monotonic() passes `deadline`. Oldest first, so a run cut short resumes there."""
    result = BatchDeletion()
    for queryset, order_by in (
        (deliveries_expired(before=before), ("status_changed_at", "id")),
        (notifications_expired(before=before), ("created_at", "id")),
        (broadcasts_expired(before=before), ("created_at", "id")),
    ):
        result.add(rows_delete_in_batches(queryset=queryset, order_by=order_by, batch_size=batch_size,
                                          deadline=deadline))
        if not result.complete:
            break
    return result
