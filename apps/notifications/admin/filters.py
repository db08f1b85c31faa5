"""List filters and search of the console's notification and delivery lists, each one query at
most, whatever the number of rows (a filter on deliveries is an EXISTS, never a join that
repeats notifications)."""

from datetime import timedelta

from django.contrib import admin
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from apps.channels.registry import channel_names
from apps.core.ids import uuid_or_none
from apps.notifications.models import Delivery, DeliveryStatus, Notification
from apps.users.models import Recipient


class AgeFilter(admin.SimpleListFilter):
    """How long ago a delivery reached its current status (for a dead letter: when it died)."""

    title = "age"
    parameter_name = "age"
    _WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}

    def lookups(self, request, model_admin):
        return [("hour", "Last hour"), ("day", "Last 24 hours"), ("week", "Last 7 days"), ("older", "Older than 7 days")]

    def queryset(self, request, queryset):
        value = self.value()
        if value in self._WINDOWS:
            return queryset.filter(status_changed_at__gte=timezone.now() - self._WINDOWS[value])
        if value == "older":
            return queryset.filter(status_changed_at__lt=timezone.now() - self._WINDOWS["week"])
        return queryset


class _DeliveryFieldFilter(admin.SimpleListFilter):
    field = ""

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(Exists(Delivery.objects.filter(notification=OuterRef("pk"), **{self.field: self.value()})))
        return queryset


class DeliveryStatusFilter(_DeliveryFieldFilter):
    """Notifications with a delivery in this status."""

    title = "delivery status"
    parameter_name = "status"
    field = "status"

    def lookups(self, request, model_admin):
        return DeliveryStatus.choices


class DeliveryChannelFilter(_DeliveryFieldFilter):
    """Notifications with a delivery on this channel."""

    title = "channel"
    parameter_name = "channel"
    field = "channel"

    def lookups(self, request, model_admin):
        return [(channel, channel) for channel in channel_names()]


class CategoryFilter(admin.SimpleListFilter):
    """The categories of recent notifications (a DISTINCT over the whole table would read every row)."""

    title = "category"
    parameter_name = "category"
    RECENT = 2000

    def lookups(self, request, model_admin):
        recent = Notification.objects.order_by("-created_at").values_list("category", flat=True)[: self.RECENT]
        return [(category, category) for category in sorted(set(recent) - {""})]

    def queryset(self, request, queryset):
        return queryset.filter(category=self.value()) if self.value() else queryset


def notification_search(queryset, term: str):
    """A notification id (or one of its deliveries' ids), a user's external id, email or phone, or a
    provider's message id: each an exact match on an indexed column."""
    term = term.strip()
    if not term:
        return queryset
    if (as_uuid := uuid_or_none(term)) is not None:
        return queryset.filter(Q(id=as_uuid) | Exists(Delivery.objects.filter(notification=OuterRef("pk"), id=as_uuid)))
    by_contact = Q(email=term) if "@" in term else Q(phone=term)
    return queryset.filter(
        Q(to=term)
        | Exists(Recipient.objects.filter(by_contact, pk=OuterRef("recipient_id")))
        | Exists(Delivery.objects.filter(notification=OuterRef("pk"), provider_message_id=term))
    )


def delivery_search(queryset, term: str):
    """The same terms as notification_search, for the deliveries' lists."""
    term = term.strip()
    if not term:
        return queryset
    if (as_uuid := uuid_or_none(term)) is not None:
        return queryset.filter(Q(id=as_uuid) | Q(notification_id=as_uuid))
    by_contact = Q(email=term) if "@" in term else Q(phone=term)
    return queryset.filter(
        Q(provider_message_id=term) | Q(notification__to=term)
        | Exists(Recipient.objects.filter(by_contact, pk=OuterRef("notification__recipient_id")))
    )
