"""A run as the API and the console show it: each step with its state, and why."""

from django.utils.html import format_html

from apps.core.console import badge
from apps.notifications.intake.selectors import notification_status
from apps.notifications.models import Delivery, DeliveryStatus
from apps.workflows.models import RunState, RunStep, StepState
from apps.workflows.selectors import run_of_notification

_BADGE_KIND = {StepState.DONE: "sent", StepState.SKIPPED: "skipped", StepState.WAITING: "pending",
               StepState.PENDING: "queued", StepState.CANCELLED: "cancelled"}


def run_describe(notification) -> dict | None:
    """The `workflow` of GET /notifications/{id}: the run this notification started or joined."""
    run, event = run_of_notification(notification_id=notification.id)
    if run is None:
        return None
    steps = run.steps.all() if event is None else RunStep.objects.filter(run=run).order_by("index")
    return {
        "key": run.version.workflow.key,
        "version": run.version.version,
        "run": str(run.id),
        "state": run.state,
        "due_at": run.due_at,
        # A digest's: which notification carries its deliveries, how many events joined, and
        # this notification's place among them.
        "notification": str(run.notification_id),
        "joined": event is not None,
        "position": event.position if event is not None else (1 if run.version.digest else None),
        "event_count": run.event_count if run.version.digest else None,
        "steps": [_step_describe(step) for step in steps],
    }


def run_status(notification) -> str | None:
    """A notification with no delivery of its own: `pending` while its run may still make one,
    `cancelled` or `skipped` when it ended without; an event that joined a digest shows the
    status of the digest's notification."""
    run, event = run_of_notification(notification_id=notification.id)
    if run is None:
        return None
    if event is not None and run.notification_id != notification.id:
        statuses = list(Delivery.objects.filter(notification_id=run.notification_id).values_list("status", flat=True))
        if statuses:
            return notification_status(statuses)
    return {RunState.CANCELLED: DeliveryStatus.CANCELLED, RunState.DONE: DeliveryStatus.SKIPPED}.get(
        run.state, DeliveryStatus.PENDING)


def _step_describe(step: RunStep) -> dict:
    described = {"index": step.index}
    if step.wait_seconds is not None:
        described["wait"] = step.wait_seconds
    else:
        described["channel"] = step.channel
        if step.condition:
            described["if"] = step.condition
    described.update(state=step.state, reason=step.reason, due_at=step.due_at, finished_at=step.finished_at,
                     delivery=str(step.delivery_id) if step.delivery_id else None)
    return described


def run_timeline_events(notification) -> list[tuple]:
    """Rows of the console's notification timeline: (when, channel, what, detail) per step moved."""
    run, event = run_of_notification(notification_id=notification.id)
    if run is None:
        return []
    label = f"workflow {run.version.workflow.key} v{run.version.version}"
    rows = [(run.created_at, label, badge("joined digest" if event else "run started", "queued"),
             f"run {run.id}" + (f", {run.event_count} events" if run.version.digest else ""))]
    for step in RunStep.objects.filter(run=run).order_by("index"):
        what = f"wait {step.wait_seconds} s" if step.wait_seconds is not None else step.channel + (
            f" if {step.condition}" if step.condition else "")
        when = step.finished_at or step.due_at or run.created_at
        detail = step.reason or (f"until {step.due_at:%Y-%m-%d %H:%M:%S}" if step.due_at else "")
        rows.append((when, format_html("step {}: {}", step.index + 1, what),
                     badge(step.state, _BADGE_KIND.get(step.state, "queued")), detail))
    return rows
