"""Moving a run through its steps, one step per transaction.

Each transaction locks the run (SKIP LOCKED: whoever holds it is already advancing it), takes
the step at `next_step`, decides it and records the outcome: the step's new state, the run's
position and due time, and a channel step's delivery, all in one commit. A process killed
anywhere in between leaves the run as it was, still due, and the next advance (a wake-up or the
scan) takes the step again from the start: never lost, never run twice (the delivery's unique
(notification, channel) and the step's unique (run, index) would refuse a second one anyway).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

from apps.notifications.intake.delivery_add import notification_delivery_add
from apps.notifications.models import Notification
from apps.workflows.conditions import condition_evaluate
from apps.workflows.definitions import MAX_STEPS
from apps.workflows.models import OPEN_RUN_STATES, RunEvent, RunState, RunStep, StepState, WorkflowRun

logger = logging.getLogger(__name__)


def run_advance(*, run_id) -> int:
    """Run the run's due steps until one waits or the run ends; return how many steps moved."""
    moved = 0
    for _ in range(MAX_STEPS + 2):
        with transaction.atomic():
            run = (WorkflowRun.objects.select_for_update(skip_locked=True, of=("self",))
                   .select_related("notification__project", "notification__recipient",
                                   "notification__template_version", "version")
                   .filter(id=run_id, state__in=OPEN_RUN_STATES, due_at__lte=Now()).first())
            if run is None:
                return moved
            if not _step(run, now=timezone.now()):
                return moved
        moved += 1
    return moved


def _step(run: WorkflowRun, *, now) -> bool:
    """Decide the run's next step; True if the run can go straight on to the one after."""
    if run.state == RunState.COLLECTING:
        digest_close(run)
        run.save(update_fields=["state"])
        return True
    steps = list(RunStep.objects.filter(run=run, index__lte=run.next_step).order_by("index"))
    if run.next_step >= len(run.version.steps) or len(steps) <= run.next_step:
        _run_finish(run, now=now)
        return False
    step, earlier = steps[run.next_step], steps[:run.next_step]
    if step.wait_seconds is not None:
        if step.state == StepState.PENDING:
            step.state, step.due_at = StepState.WAITING, now + timedelta(seconds=step.wait_seconds)
            step.save(update_fields=["state", "due_at"])
            _run_due(run, at=step.due_at)
            return False
        return _step_done(run, step, now=now)
    verdict = condition_evaluate(condition=step.condition, earlier=earlier)
    if verdict.settle_first:
        step.state, step.reason = StepState.WAITING, verdict.reason
        step.save(update_fields=["state", "reason"])
        # The delivery's final status brings the run forward (wakeups.py); this is the safety net.
        _run_due(run, at=now + timedelta(seconds=settings.NOTIFIER_WORKFLOW_SETTLE_RECHECK_SECONDS), awaiting=True)
        return False
    if not verdict.run:
        step.state, step.reason, step.finished_at = StepState.SKIPPED, verdict.reason, now
        step.save(update_fields=["state", "reason", "finished_at"])
        return _run_next(run)
    step.delivery = notification_delivery_add(notification=run.notification, channel=step.channel, now=now)
    step.reason = verdict.reason
    return _step_done(run, step, now=now)


def _step_done(run: WorkflowRun, step: RunStep, *, now) -> bool:
    step.state, step.finished_at = StepState.DONE, now
    step.save(update_fields=["state", "finished_at", "delivery", "reason"])
    return _run_next(run)


def _run_next(run: WorkflowRun) -> bool:
    run.next_step += 1
    # The database's clock, which the next claim compares with: a host running ahead must not
    # make the next step look not yet due.
    run.due_at, run.awaiting_deliveries = Now(), False
    run.save(update_fields=["next_step", "due_at", "awaiting_deliveries"])
    return True


def _run_due(run: WorkflowRun, *, at, awaiting: bool = False) -> None:
    run.due_at, run.awaiting_deliveries = at, awaiting
    run.save(update_fields=["due_at", "awaiting_deliveries"])


def _run_finish(run: WorkflowRun, *, now) -> None:
    run.state, run.due_at, run.finished_at, run.awaiting_deliveries = RunState.DONE, None, now, False
    run.save(update_fields=["state", "due_at", "finished_at", "awaiting_deliveries"])


def digest_close(run: WorkflowRun) -> None:
    """Stop the digest taking events (the caller saves `state`). Its run renders the first
    event's data plus `events` (each event's data, in order of arrival) and `event_count`,
    written on its notification, which the deliveries render."""
    events = list(RunEvent.objects.filter(run=run).order_by("position").values_list("notification__data", flat=True))
    data = {**(events[0] if events else run.notification.data), "events": events, "event_count": len(events)}
    Notification.objects.filter(id=run.notification_id).update(data=data)
    run.notification.data = data
    run.state = RunState.ACTIVE
    logger.info("digest run %s closed with %d events", run.id, len(events))


@transaction.atomic
def run_cancel(*, notification_id) -> bool:
    """Stop the notification's run: every step not yet run is cancelled. Waits for a step being
    decided right now (the run's lock), so nothing it creates escapes the caller's cancel of the
    notification's deliveries, which comes after. Returns whether a run was stopped."""
    run = WorkflowRun.objects.select_for_update().filter(notification_id=notification_id,
                                                         state__in=OPEN_RUN_STATES).first()
    if run is None:
        return False
    now = timezone.now()
    RunStep.objects.filter(run=run, state__in=(StepState.PENDING, StepState.WAITING)).update(
        state=StepState.CANCELLED, finished_at=now, reason="the notification was cancelled")
    run.state, run.due_at, run.finished_at, run.awaiting_deliveries = RunState.CANCELLED, None, now, False
    run.save(update_fields=["state", "due_at", "finished_at", "awaiting_deliveries"])
    return True
