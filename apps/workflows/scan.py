"""The periodic scan (beat, every NOTIFIER_WORKFLOW_SCAN_SECONDS): every open run that is due.

Waits and digests are rows with a due time, not delayed broker messages, so a run waiting a week
costs its rows and nothing in RabbitMQ. The query reads the partial index of open runs
(workflow_run_due) and claims with SKIP LOCKED, so scans on several workers share the due runs
and skip one that a wake-up is advancing right now. It is also the safety net for a lost wake-up.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models.functions import Now

from apps.workflows.engine import run_advance
from apps.workflows.models import OPEN_RUN_STATES, WorkflowRun

logger = logging.getLogger(__name__)

SCAN_BATCH = 200
_MAX_BATCHES = 10


# A run whose step keeps failing (a bug, a row it cannot write) is looked at again after this,
# so it cannot hold the head of the due queue and starve the runs behind it.
FAILED_STEP_RETRY = timedelta(seconds=60)


def _advance_isolated(run_id) -> int:
    try:
        return run_advance(run_id=run_id)
    except Exception:
        # The step's transaction rolled back: nothing of it happened. Later, not at once.
        logger.exception("workflow run %s: its step failed; tried again in %s", run_id, FAILED_STEP_RETRY)
        WorkflowRun.objects.filter(id=run_id, state__in=OPEN_RUN_STATES).update(due_at=Now() + FAILED_STEP_RETRY)
        return 0


def runs_scan(*, batch_size: int = SCAN_BATCH, max_batches: int = _MAX_BATCHES) -> int:
    """Advance the runs due now; return how many steps moved."""
    moved, seen = 0, set()
    for _ in range(max_batches):
        with transaction.atomic():
            due = [run_id for run_id in WorkflowRun.objects.select_for_update(skip_locked=True)
                   .filter(state__in=OPEN_RUN_STATES, due_at__lte=Now()).exclude(id__in=seen)
                   .order_by("due_at").values_list("id", flat=True)[:batch_size]]
        for run_id in due:
            moved += _advance_isolated(run_id)
        seen.update(due)
        if len(due) < batch_size:
            break
    if moved:
        logger.info("workflow scan: %d steps moved", moved)
    return moved
