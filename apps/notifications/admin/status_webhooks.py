"""The admin of status webhook events: what was posted to each project's status_webhook_url, what
failed and why, and a Replay action (with a confirmation page) for failed and dead events."""

from django.contrib import admin, messages

from apps.core.console import ReadOnlyMixin, capped_action_summary, confirm_action
from apps.notifications.models import StatusEvent
from apps.notifications.status_webhooks.posting import REPLAYABLE_EVENT_STATUSES, status_events_replay


@admin.register(StatusEvent)
class StatusEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Rows are written with the status changes and moved by the workers, never edited by hand."""

    list_display = ("occurred_at", "project", "delivery_status", "sequence", "status", "attempts", "last_error_code",
                    "short_error", "delivery_id", "sent_at")
    list_filter = ("status", "delivery_status", "last_error_code", "project")
    list_select_related = ("project",)
    search_fields = ("=id", "=delivery__id")
    ordering = ("-occurred_at",)
    date_hierarchy = "occurred_at"
    actions = ["replay"]

    @admin.display(description="last error")
    def short_error(self, event) -> str:
        return event.last_error[:120]

    @admin.action(description="Replay: post again with a fresh attempt budget", permissions=["change"])
    def replay(self, request, queryset):
        selected = queryset.count()
        eligible = queryset.filter(status__in=REPLAYABLE_EVENT_STATUSES)
        # Oldest first, at most the console's per-action limit, as the dead letters' Replay.
        replayable = eligible.count()
        taking, summary = capped_action_summary(verb="Post", noun=("status webhook event", "status webhook events"),
                                                count=replayable)

        def perform() -> None:
            event_ids = list(eligible.order_by("occurred_at", "id").values_list("id", flat=True)[:taking])
            replayed = status_events_replay(event_ids=event_ids, actor=request.user)
            self.message_user(request, f"Replayed {replayed} status webhook events.", messages.SUCCESS)
            if selected - replayable:
                self.message_user(request, f"Left {selected - replayable} alone: only failed and dead events are "
                                  "replayed.", messages.WARNING)

        return confirm_action(
            self, request, queryset, action="replay", title="Replay",
            summary=f"{summary} to their project's status_webhook_url again, with a fresh attempt budget? "
                    "Receivers drop repeats by event id (X-Notifier-Event-Id).",
            warning=(f"{selected - replayable} of the selected events are not failed or dead and will be left alone."
                     if selected - replayable else ""),
            perform=perform,
        )
