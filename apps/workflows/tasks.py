"""Celery tasks of workflows: thin, ids only, safe to receive twice (the run's lock and due time decide)."""

from celery import shared_task

from apps.notifications.queues import TASK_WORKFLOW_RUN_ADVANCE, TASK_WORKFLOW_RUNS_SCAN
from apps.workflows.engine import run_advance
from apps.workflows.scan import runs_scan


@shared_task(name=TASK_WORKFLOW_RUN_ADVANCE, acks_late=True, reject_on_worker_lost=True)
def run_advance_task(run_id: str) -> None:
    # A redelivered message finds the step already taken (or the run locked) and does nothing;
    # a lost one is found by the scan.
    run_advance(run_id=run_id)


@shared_task(name=TASK_WORKFLOW_RUNS_SCAN, ignore_result=True)
def runs_scan_task() -> None:
    runs_scan()
