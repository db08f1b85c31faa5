from django.core.cache import cache
from django.db.models import Prefetch, QuerySet

from apps.core.exceptions import NotFound
from apps.notifications.models import (
    ACTIVE_STATUSES,
    SENT_STATUSES,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Notification,
)
from apps.projects.models import Project


def notification_status(statuses: list[str]) -> str:
    """One word for a notification from its deliveries' statuses.

    While any delivery is moving: `pending` if all of those wait for their time, else `processing`.
    Once all are final: `sent` if any reached the user's provider, else the shared final status
    (`failed`, `dead`, `cancelled`, `skipped`), or `failed` when they differ.
    """
    if not statuses:
        # A workflow's notification before its first channel step (or a digest's event): waiting.
        return DeliveryStatus.PENDING
    active = [s for s in statuses if s in ACTIVE_STATUSES]
    if active:
        return DeliveryStatus.PENDING if all(s == DeliveryStatus.PENDING for s in active) else "processing"
    if any(s in SENT_STATUSES for s in statuses):
        return DeliveryStatus.SENT
    if len(set(statuses)) == 1:
        return statuses[0]
    return DeliveryStatus.FAILED


def notification_get(*, project: Project, notification_id) -> Notification:
    notification = (
        Notification.objects.filter(project=project, id=notification_id)
        .select_related("template")
        .prefetch_related(
            Prefetch("deliveries", queryset=Delivery.objects.order_by("created_at", "channel")),
            Prefetch("deliveries__attempts", queryset=DeliveryAttempt.objects.order_by("number")),
        )
        .first()
    )
    if notification is None:
        raise NotFound("No such notification.")
    return notification


def notification_list(*, project: Project, to: str = "", status: str = "", channel: str = "") -> QuerySet[Notification]:
    """Notifications, newest first. `status` and `channel` match the deliveries: with both, one
    delivery must match both (e.g. the notifications whose email is dead)."""
    notifications = Notification.objects.filter(project=project)
    if to:
        notifications = notifications.filter(to=to)
    delivery_filter = {key: value for key, value in {"status": status, "channel": channel}.items() if value}
    if delivery_filter:
        notifications = notifications.filter(
            id__in=Delivery.objects.filter(notification__project=project, **delivery_filter).values("notification_id")
        )
    return notifications.select_related("template").prefetch_related(
        Prefetch("deliveries", queryset=Delivery.objects.order_by("created_at", "channel"))
    )


# The categories a project has sent in change rarely; the preference page asks for them on each view.
_CATEGORIES_CACHE_SECONDS = 600


def notification_categories(*, project: Project) -> list[str]:
    """The categories the project's notifications have used, sorted (those still kept: retention
    bounds the scan). Cached a few minutes per project: a page view must not scan each time."""
    key = f"notifier:notification-categories:{project.id}"
    categories = cache.get(key)
    if categories is None:
        categories = sorted(
            Notification.objects.filter(project=project).exclude(category="")
            .values_list("category", flat=True).distinct().order_by()
        )
        cache.set(key, categories, _CATEGORIES_CACHE_SECONDS)
    return categories
