from datetime import timedelta

from django.test import TestCase
from django.utils import timezone

from apps.notifications.delivery.sending import deliveries_send
from apps.notifications.models import Delivery, DeliveryStatus
from apps.workflows.models import RunStep, WorkflowRun
from apps.workflows.scan import runs_scan


def start(api, workflow: str, to: str = "ada", idempotency_key: str = "", **body):
    headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}
    return api.post("/api/v1/notifications", {"to": to, "workflow": workflow, "data": {"name": "Ada"}, **body},
                    format="json", **headers)


def work() -> None:
    """What the worker and beat would do now: advance due runs, send queued deliveries, until
    still. The after-commit callbacks run as they would in a worker (publishes, run wake-ups)."""
    for _ in range(10):
        with TestCase.captureOnCommitCallbacks(execute=True):
            runs_scan()
        queued = [str(i) for i in Delivery.objects.filter(status=DeliveryStatus.QUEUED).values_list("id", flat=True)]
        if not queued:
            return
        with TestCase.captureOnCommitCallbacks(execute=True):
            deliveries_send(delivery_ids=queued)


def travel(seconds: float) -> None:
    """Let `seconds` pass for the runs: every due time moves that much earlier."""
    delta = timedelta(seconds=seconds)
    for run in WorkflowRun.objects.exclude(due_at=None):
        WorkflowRun.objects.filter(id=run.id).update(due_at=run.due_at - delta)
    for step in RunStep.objects.exclude(due_at=None):
        RunStep.objects.filter(id=step.id).update(due_at=step.due_at - delta)


def steps_of(api, notification_id) -> list[tuple]:
    workflow = api.get(f"/api/v1/notifications/{notification_id}").json()["workflow"]
    return [(s.get("channel") or f"wait {s['wait']}", s["state"]) for s in workflow["steps"]]


def now():
    return timezone.now()
