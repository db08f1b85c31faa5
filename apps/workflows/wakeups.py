"""Bringing runs forward: a message naming the run, published after commit.

The message is only a nudge. The run's row holds its due time, and the periodic scan (scan.py)
advances whatever is due whether or not a message arrived, so a lost publish costs a few
seconds, never a step.
"""

import logging

from django.db import transaction
from django.db.models import Case, F, When
from django.db.models.functions import Now

from apps.notifications.queues import TASK_WORKFLOW_RUN_ADVANCE, WORKFLOW_QUEUE
from apps.workflows.models import RunState, WorkflowRun

logger = logging.getLogger(__name__)


def runs_advance_on_commit(run_ids) -> None:
    if run_ids:
        ids = [str(run_id) for run_id in run_ids]
        transaction.on_commit(lambda: runs_advance_publish(ids))


def runs_advance_publish(run_ids: list[str]) -> None:
    """Never raises: the rows are committed and the scan finds them due anyway."""
    from celery_app import app

    try:
        with app.producer_or_acquire() as producer:
            for run_id in run_ids:
                app.send_task(TASK_WORKFLOW_RUN_ADVANCE, args=[run_id], queue=WORKFLOW_QUEUE, producer=producer)
    except Exception:
        logger.warning("could not publish %d run wake-ups; the scan advances them", len(run_ids), exc_info=True)


def runs_wake_awaiting(*, notification_ids: list) -> None:
    """Runs whose next step waits for these notifications' deliveries: due now, and nudged.
    Called after the commit that recorded the deliveries' final status.

    One UPDATE of every active run of these notifications, not only those marked awaiting: a run
    whose step is deciding right now (it read the delivery still in flight) holds its row, and
    this UPDATE waits for it and then sees the `awaiting_deliveries` it committed. A filter on
    the flag would have been read before that commit, and the wake-up lost until the scan.
    """
    woken = WorkflowRun.objects.filter(notification_id__in=notification_ids, state=RunState.ACTIVE).update(
        due_at=Case(When(awaiting_deliveries=True, then=Now()), default=F("due_at")))
    if woken:
        runs_advance_publish([str(run_id) for run_id in WorkflowRun.objects.filter(
            notification_id__in=notification_ids, state=RunState.ACTIVE, awaiting_deliveries=True,
        ).values_list("id", flat=True)])
