"""Workflows in the console: each one's versions, and the runs in progress (read-only: both are
written through the API and the engine)."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from apps.core.console import ReadOnlyAdmin, ReadOnlyMixin, badge
from apps.workflows.models import Workflow, WorkflowRun, WorkflowVersion


class WorkflowVersionInline(ReadOnlyMixin, admin.TabularInline):
    model = WorkflowVersion
    fields = ("version", "template", "steps", "digest", "created_at")
    extra = 0
    ordering = ("-version",)


@admin.register(Workflow)
class WorkflowAdmin(ReadOnlyAdmin):
    list_display = ("key", "project", "created_at")
    list_filter = ("project",)
    list_select_related = ("project",)
    search_fields = ("key",)
    inlines = (WorkflowVersionInline,)


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ReadOnlyAdmin):
    """Runs, to find those waiting or stuck: the notification's page shows each one's steps."""

    list_display = ("id", "workflow", "state_badge", "next_step", "due_at", "event_count", "notification_link",
                    "created_at")
    list_filter = ("state", "version__workflow__project")
    list_select_related = ("version__workflow",)
    ordering = ("-created_at",)
    show_full_result_count = False

    @admin.display(description="workflow")
    def workflow(self, run):
        return f"{run.version.workflow.key} v{run.version.version}"

    @admin.display(description="state")
    def state_badge(self, run):
        return badge(run.state, {"collecting": "pending", "active": "queued", "done": "sent"}.get(run.state, run.state))

    @admin.display(description="notification")
    def notification_link(self, run):
        return format_html('<a href="{}">{}</a>', reverse("admin:notifications_notification_change",
                                                          args=[run.notification_id]), run.notification_id)
