"""A process killed between deciding a step and creating its delivery loses nothing and sends nothing twice."""

import subprocess
import sys

import pytest

from apps.notifications.models import Delivery, DeliveryStatus
from apps.workflows.models import RunStep, StepState, WorkflowRun
from apps.workflows.scan import runs_scan
from apps.workflows.wakeups import runs_wake_awaiting
from tests.support.processes import REPO_ROOT, process_env, test_database_url
from tests.workflows.conftest import put_workflow
from tests.workflows.helpers import start

pytestmark = pytest.mark.django_db(transaction=True)


def test_sigkill_between_condition_and_delivery_then_the_scan_runs_the_step_exactly_once(api, user, template):
    put_workflow(api, "fallback", template="alert", steps=[{"channel": "email"}, {"channel": "sms", "if": "not_delivered"}])
    start(api, "fallback")
    runs_scan()  # the email step: its delivery is created
    Delivery.objects.filter(channel="email").update(status=DeliveryStatus.FAILED)  # as if the provider refused it
    run = WorkflowRun.objects.get()
    runs_wake_awaiting(notification_ids=[run.notification_id])  # what recording the failure does after commit

    process = subprocess.Popen([sys.executable, "-m", "tests.workflows.crash_step", str(run.id)], cwd=REPO_ROOT,
                               env=process_env(DATABASE_URL=test_database_url()), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        output = []
        while (line := process.stdout.readline()) and line.strip() != "condition evaluated":
            output.append(line)
        assert line.strip() == "condition evaluated", "".join(output)
    finally:
        process.kill()  # SIGKILL: no cleanup, the transaction dies with the connection
        process.wait(timeout=10)

    assert not Delivery.objects.filter(channel="sms").exists()
    killed = RunStep.objects.get(run=run, index=1)
    assert killed.state == StepState.WAITING and killed.delivery is None  # as before the killed attempt
    assert WorkflowRun.objects.get().next_step == 1

    runs_scan()
    runs_scan()  # and again: nothing more
    assert Delivery.objects.filter(channel="sms").count() == 1
    step = RunStep.objects.get(run=run, index=1)
    assert step.state == StepState.DONE and step.delivery.channel == "sms"
    assert WorkflowRun.objects.get().state == "done"
