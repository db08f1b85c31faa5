"""The admin for operators: what was sent, what failed and why, and the dead-letter queue.

Everything here is read-only except two actions, Replay and Discard, which go through the
dead-letter services so each is recorded with who and when.
"""

import uuid
from datetime import timedelta

from django.contrib import admin, messages
from django.db.models import Q
from django.utils import timezone

from apps.notifications.dead_letters import DEAD_LETTERS, dead_letters_discard, dead_letters_replay
from apps.notifications.models import (
    Broadcast,
    DeadLetter,
    Delivery,
    DeliveryAttempt,
    DeliveryOperatorAction,
    Notification,
)


class ReadOnlyMixin:
    """Rows are written by the pipeline and the services, never edited by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


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


class DeliveryAttemptInline(ReadOnlyMixin, admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "started_at", "duration_ms", "outcome", "error_code", "error_message", "next_attempt_at",
              "provider_message_id")
    extra = 0
    ordering = ("number",)


class DeliveryOperatorActionInline(ReadOnlyMixin, admin.TabularInline):
    model = DeliveryOperatorAction
    fields = ("created_at", "action", "actor_label", "previous_status", "note")
    extra = 0


class DeliveryInline(ReadOnlyMixin, admin.TabularInline):
    model = Delivery
    fields = ("id", "channel", "status", "attempt_count", "last_error_code", "last_error", "sent_at")
    extra = 0
    show_change_link = True


@admin.register(Notification)
class NotificationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "project", "to", "template", "priority", "created_at")
    list_filter = ("project", "priority")
    search_fields = ("=to", "=idempotency_key")
    date_hierarchy = "created_at"
    inlines = [DeliveryInline]

    def get_search_results(self, request, queryset, search_term):
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if (term := _uuid(search_term)) is not None:  # ids are UUIDs: exact match only
            found |= queryset.filter(id=term)
        return found, may_have_duplicates

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class _DeliveryAdminBase(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "channel", "status", "attempt_count", "last_error_code", "short_error", "status_changed_at",
                    "notification_to")
    list_filter = ("channel", "status", "last_error_code", AgeFilter)
    list_select_related = ("notification",)
    search_fields = ("=provider_message_id", "=notification__to")
    ordering = ("-status_changed_at",)
    inlines = [DeliveryAttemptInline, DeliveryOperatorActionInline]
    actions = ["replay", "discard"]

    @admin.display(description="to", ordering="notification__to")
    def notification_to(self, delivery) -> str:
        return delivery.notification.to

    @admin.display(description="last error")
    def short_error(self, delivery) -> str:
        return delivery.last_error[:120]

    def get_search_results(self, request, queryset, search_term):
        # Ids are UUIDs: an exact match on the delivery or its notification, and no error for
        # a search term that is not one.
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if (term := _uuid(search_term)) is not None:
            found |= queryset.filter(Q(id=term) | Q(notification_id=term))
        return found, may_have_duplicates

    @admin.action(description="Replay: queue again with a fresh attempt budget", permissions=["change"])
    def replay(self, request, queryset):
        result = dead_letters_replay(delivery_ids=queryset.values_list("id", flat=True), actor=request.user)
        _report(self, request, "Replayed", result)

    @admin.action(description="Discard: take out of the dead-letter queue for good", permissions=["change"])
    def discard(self, request, queryset):
        result = dead_letters_discard(delivery_ids=queryset.values_list("id", flat=True), actor=request.user)
        _report(self, request, "Discarded", result)


@admin.register(Delivery)
class DeliveryAdmin(_DeliveryAdminBase):
    """Every delivery. Replay takes dead and failed ones; Discard takes dead ones."""

    list_filter = ("channel", "status", "last_error_code", AgeFilter, ("discarded_at", admin.EmptyFieldListFilter))


@admin.register(DeadLetter)
class DeadLetterAdmin(_DeliveryAdminBase):
    """The dead-letter queue of record: dead deliveries not discarded."""

    list_filter = ("channel", "last_error_code", AgeFilter)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(DEAD_LETTERS)


@admin.register(DeliveryOperatorAction)
class DeliveryOperatorActionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The audit trail of replays and discards."""

    list_display = ("created_at", "action", "actor_label", "delivery", "previous_status", "note")
    list_filter = ("action", "actor_label")
    list_select_related = ("delivery",)

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Broadcast)
class BroadcastAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Broadcasts and their progress; cancel through the API (it also cancels their deliveries)."""

    list_display = ("id", "project", "template", "status", "total", "created", "skipped", "failed", "created_at",
                    "heartbeat_at")
    list_filter = ("status", "project")
    list_select_related = ("project", "template")
    search_fields = ("=idempotency_key",)
    date_hierarchy = "created_at"

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def _report(model_admin, request, verb: str, result) -> None:
    if result.done:
        model_admin.message_user(request, f"{verb} {len(result.done)} deliveries.", messages.SUCCESS)
    if result.skipped:
        reasons = ", ".join(f"{delivery_id} ({status})" for delivery_id, status in sorted(result.skipped.items()))
        model_admin.message_user(request, f"Skipped {len(result.skipped)}, not in a state for this: {reasons}",
                                 messages.WARNING)


def _uuid(term: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(term.strip())
    except ValueError:
        return None


# Status webhook events have their own admin module.
from apps.notifications import admin_status_webhooks  # noqa: E402, F401
