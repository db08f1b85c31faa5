"""Deleting what is older than the retention period, across the apps that hold it.

Each app deletes what it owns (notifications: deliveries, attempts, notifications, broadcasts;
inbox: messages); only this module knows them all, so none imports another above it. Run by
beat on the maintenance queue and by `manage.py purge`.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from apps.core.batches import BatchDeletion
from apps.inbox.services import inbox_messages_expired, inbox_messages_purge
from apps.notifications.operations.retention import delivery_log_expired_count, delivery_log_purge

logger = logging.getLogger(__name__)

# Rows counted by model label, reported under these names.
_NAMES = {
    "notifications.Delivery": "deliveries",
    "notifications.DeliveryAttempt": "attempts",
    "notifications.DeliveryOperatorAction": "operator_actions",
    "notifications.Notification": "notifications",
    "notifications.Broadcast": "broadcasts",
    "inbox.InboxMessage": "inbox_messages",
}


@dataclass
class RetentionResult:
    delivery_log_before: datetime | None
    inbox_before: datetime | None
    rows: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    complete: bool = True
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {"rows": self.rows, "batches": self.batches, "complete": self.complete, "dry_run": self.dry_run,
                "delivery_log_before": self.delivery_log_before and self.delivery_log_before.isoformat(),
                "inbox_before": self.inbox_before and self.inbox_before.isoformat()}


def _cutoff(now: datetime, days: int) -> datetime | None:
    return now - timedelta(days=days) if days > 0 else None  # 0: kept forever


def retention_purge(*, dry_run: bool = False, batch_size: int | None = None,
                    budget_seconds: float | None = None) -> RetentionResult:
    """Delete rows past NOTIFIER_RETENTION_DAYS (the delivery log) and NOTIFIER_INBOX_RETENTION_DAYS
    (inbox messages), in batches, stopping after the time budget (`complete` is then False and
    the next run continues). With dry_run, count what would go and delete nothing."""
    now = timezone.now()
    result = RetentionResult(delivery_log_before=_cutoff(now, settings.NOTIFIER_RETENTION_DAYS),
                             inbox_before=_cutoff(now, settings.NOTIFIER_INBOX_RETENTION_DAYS), dry_run=dry_run)
    if dry_run:
        if result.delivery_log_before:
            result.rows.update(delivery_log_expired_count(before=result.delivery_log_before))
        if result.inbox_before:
            result.rows["inbox_messages"] = inbox_messages_expired(before=result.inbox_before).count()
        return result

    batch_size = batch_size or settings.NOTIFIER_RETENTION_BATCH_SIZE
    deadline = time.monotonic() + (budget_seconds or settings.NOTIFIER_RETENTION_TIME_BUDGET_SECONDS)
    deletion = BatchDeletion()
    if result.delivery_log_before:
        deletion.add(delivery_log_purge(before=result.delivery_log_before, batch_size=batch_size, deadline=deadline))
    if result.inbox_before and deletion.complete:
        deletion.add(inbox_messages_purge(before=result.inbox_before, batch_size=batch_size, deadline=deadline))
    result.rows = {_NAMES.get(label, label): count for label, count in deletion.rows.items()}
    result.batches, result.complete = deletion.batches, deletion.complete
    if result.batches:
        logger.info("retention: %s", result.as_dict())
    return result
