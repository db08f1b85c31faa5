"""The periodic scan (beat, every NOTIFIER_WORKFLOW_SCAN_SECONDS): every open run that is due.

Waits and digests are rows with a due time, not delayed broker messages, so a run waiting a week
costs its rows and nothing in RabbitMQ. The query reads the partial index of open runs
(workflow_run_due) and claims with SKIP LOCKED, so scans on several workers share the due runs
and skip one that a wake-up is advancing right now. It is also the safety net for a lost wake-up.
"""

import logging

from django.db import transaction
from django.db.models.functions import Now

from apps.workflows.engine import run_advance
from apps.workflows.models import OPEN_RUN_STATES, WorkflowRun

logger = logging.getLogger(__name__)

SCAN_BATCH = 200
_MAX_BATCHES = 10


def runs_scan(*, batch_size: int = SCAN_BATCH, max_batches: int = _MAX_BATCHES) -> int:
    """Advance the runs due now; return how many steps moved."""
    moved, seen = 0, set()
    for _ in range(max_batches):
        with transaction.atomic():
            due = [run_id for run_id in WorkflowRun.objects.select_for_update(skip_locked=True)
                   .filter(state__in=OPEN_RUN_STATES, due_at__lte=Now()).exclude(id__in=seen)
                   .order_by("due_at").values_list("id", flat=True)[:batch_size]]
        for run_id in due:
            moved += run_advance(run_id=run_id)
        seen.update(due)
        if len(due) < batch_size:
            break
    if moved:
        logger.info("workflow scan: %d steps moved", moved)
    return moved
