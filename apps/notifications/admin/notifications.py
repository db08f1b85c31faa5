"""The admin of notifications, deliveries and broadcasts: what was sent, what failed and why, and
the dead-letter queue.

Everything here is read-only except two actions, Replay and Discard, which go through a
confirmation page and then the dead-letter services, so each is recorded with who and when.
Lists cost a fixed number of queries whatever their length (select_related / prefetch).
"""

from django.contrib import admin, messages
from django.db.models import Prefetch

from apps.core.console import ReadOnlyMixin, badge, badges, capped_action_summary, confirm_action
from apps.notifications.admin.filters import (
    AgeFilter,
    CategoryFilter,
    DeliveryChannelFilter,
    DeliveryStatusFilter,
    delivery_search,
    notification_search,
)
from apps.notifications.admin.timeline import notification_timeline
from apps.notifications.models import (
    Broadcast,
    DeadLetter,
    Delivery,
    DeliveryAttempt,
    DeliveryOperatorAction,
    Notification,
)
from apps.notifications.operations.dead_letters import (
    DEAD_LETTERS,
    REPLAYABLE_STATUSES,
    dead_letters_discard,
    dead_letters_replay,
)
from apps.notifications.operations.stats import dead_letter_counts


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
    list_display = ("id", "project", "to", "template", "delivery_statuses", "category", "priority", "created_at")
    list_filter = (DeliveryStatusFilter, DeliveryChannelFilter, "project", "template", CategoryFilter,
                   ("created_at", admin.DateFieldListFilter))
    list_select_related = ("project", "template")
    search_fields = ("to",)  # the search box; notification_search decides what a term matches
    search_help_text = "A notification or delivery id, a user's external id, email or phone, or a provider message id."
    readonly_fields = ("timeline",)
    fieldsets = [
        (None, {"fields": ("id", "project", "to", "template", "template_version", "category", "priority", "send_at",
                           "broadcast", "created_at")}),
        ("Timeline", {"fields": ("timeline",)}),
        ("Request", {"fields": ("data", "idempotency_key"), "classes": ("collapse",)}),
    ]
    inlines = [DeliveryInline]
    show_full_result_count = False  # a COUNT(*) of the whole table on every page is the slow part
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice would read the whole table

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related(
            Prefetch("deliveries", queryset=Delivery.objects.only("id", "notification_id", "channel", "status")
                     .order_by("channel"))
        )

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:  # the timeline's rows, in three queries
            obj = (Notification.objects.filter(pk=obj.pk).select_related("project", "template")
                   .prefetch_related(Prefetch("deliveries", queryset=Delivery.objects.order_by("created_at")),
                                     "deliveries__attempts", "deliveries__operator_actions").get())
        return obj

    def get_search_results(self, request, queryset, search_term):
        return notification_search(queryset, search_term), False

    @admin.display(description="deliveries")
    def delivery_statuses(self, notification):
        return badges((f"{d.channel}: {d.status}", d.status) for d in notification.deliveries.all())

    @admin.display(description="")
    def timeline(self, notification):
        return notification_timeline(notification)

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class _DeliveryAdminBase(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "channel", "coloured_status", "attempt_count", "last_error_code", "short_error",
                    "status_changed_at", "notification_to")
    list_filter = ("channel", "status", "last_error_code", AgeFilter)
    list_select_related = ("notification",)
    search_fields = ("provider_message_id",)
    search_help_text = "A delivery or notification id, a user's external id, email or phone, or a provider message id."
    ordering = ("-status_changed_at",)
    inlines = [DeliveryAttemptInline, DeliveryOperatorActionInline]
    actions = ["replay", "discard"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description="to", ordering="notification__to")
    def notification_to(self, delivery) -> str:
        return delivery.notification.to

    @admin.display(description="status", ordering="status")
    def coloured_status(self, delivery):
        return badge(delivery.status, delivery.status)

    @admin.display(description="last error")
    def short_error(self, delivery) -> str:
        return delivery.last_error[:120]

    def get_search_results(self, request, queryset, search_term):
        return delivery_search(queryset, search_term), False

    @admin.action(description="Replay: queue again with a fresh attempt budget", permissions=["change"])
    def replay(self, request, queryset):
        eligible = queryset.filter(status__in=REPLAYABLE_STATUSES, discarded_at__isnull=True)
        return self._confirm(
            request, queryset, eligible, action="replay", verb="Replay", noun=("delivery", "deliveries"),
            effect="each is queued again with a fresh attempt budget and sent by a worker.",
            left_alone="Only dead or failed deliveries not discarded are replayed",
            service=dead_letters_replay, done="Replayed",
        )

    @admin.action(description="Discard: take out of the dead-letter queue for good", permissions=["change"])
    def discard(self, request, queryset):
        return self._confirm(
            request, queryset, queryset.filter(DEAD_LETTERS), action="discard", verb="Discard",
            noun=("dead letter", "dead letters"),
            effect="they stay dead and leave the queue for good. This cannot be undone.",
            left_alone="Only dead deliveries not yet discarded are discarded", service=dead_letters_discard,
            done="Discarded",
        )

    def _confirm(self, request, queryset, eligible, *, action, verb, noun, effect, left_alone, service, done):
        # Oldest first, as `dlq --limit`.
        count = eligible.count()
        taking, summary = capped_action_summary(verb=verb, noun=noun, count=count)
        warnings = [f"{left_alone}; the others selected are left alone."] if count != queryset.count() else []
        return confirm_action(
            self, request, queryset, action=action, title=verb, summary=f"{summary}: {effect}", warning=" ".join(warnings),
            perform=lambda: _report(self, request, done, service(
                delivery_ids=list(eligible.order_by("status_changed_at", "id").values_list("id", flat=True)[:taking]),
                actor=request.user)),
        )


@admin.register(Delivery)
class DeliveryAdmin(_DeliveryAdminBase):
    """Every delivery. Replay takes dead and failed ones; Discard takes dead ones."""

    list_filter = ("channel", "status", "last_error_code", AgeFilter, ("discarded_at", admin.EmptyFieldListFilter))


@admin.register(DeadLetter)
class DeadLetterAdmin(_DeliveryAdminBase):
    """The dead-letter queue of record: dead deliveries not discarded, with counts per channel and error."""

    list_filter = ("channel", "last_error_code", AgeFilter)
    change_list_template = "admin/notifications/deadletter/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(DEAD_LETTERS)

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}), "dead_letter_counts": dead_letter_counts()})


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The delivery log: every attempt and what the provider answered. Read-only."""

    list_display = ("started_at", "delivery", "number", "coloured_outcome", "error_code", "duration_ms",
                    "provider_message_id")
    list_filter = ("outcome", "delivery__channel", ("started_at", admin.DateFieldListFilter))
    list_select_related = ("delivery",)
    search_fields = ("=provider_message_id", "=error_code")
    ordering = ("-started_at",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description="outcome", ordering="outcome")
    def coloured_outcome(self, attempt):
        return badge(attempt.outcome, attempt.outcome)

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DeliveryOperatorAction)
class DeliveryOperatorActionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Per delivery: each replay and discard (the action as a whole is in the operator audit log)."""

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
        reasons = ", ".join(f"{delivery_id} ({status})" for delivery_id, status in sorted(result.skipped.items())[:50])
        model_admin.message_user(request, f"Skipped {len(result.skipped)}, not in a state for this: {reasons}",
                                 messages.WARNING)
