"""What the notifications pipeline calls (apps/notifications/workflow_hooks.py), registered at start."""

import logging

from django.db import transaction

from apps.notifications.workflow_hooks import WorkflowIntake
from apps.workflows.definitions import workflow_channels
from apps.workflows.engine import run_cancel
from apps.workflows.models import OPEN_RUN_STATES, RunEvent, RunState, WorkflowRun
from apps.workflows.runs import DIGEST_PROVIDES, runs_start
from apps.workflows.selectors import workflow_versions_newest
from apps.workflows.timeline import run_describe, run_status, run_timeline_events
from apps.workflows.wakeups import runs_wake_awaiting

logger = logging.getLogger(__name__)


def _wake(notification_ids) -> None:
    # After the sender's commit: a failure here must not reach the worker's send (the scan will
    # find the runs at their recheck time instead).
    try:
        runs_wake_awaiting(notification_ids=notification_ids)
    except Exception:
        logger.warning("could not wake the runs of %d notifications; the scan will", len(notification_ids),
                       exc_info=True)


class PipelineHooks:
    def intake(self, *, project, keys):
        return {
            key: WorkflowIntake(workflow_key=key, template_key=version.template.key,
                                channels=workflow_channels(version.steps),
                                provides=DIGEST_PROVIDES if version.digest else ())
            for key, version in workflow_versions_newest(project=project, keys=keys).items()
        }

    def runs_start(self, *, project, started):
        runs_start(project=project, started=started)

    def deliveries_settled(self, *, notification_ids):
        # After the commit: the recording transaction holds the deliveries' locks, which a run
        # deciding its step may be reading; waking the run inside it could only wait on that run.
        transaction.on_commit(lambda: _wake(notification_ids))

    def notification_cancel(self, *, notification_id):
        run_cancel(notification_id=notification_id)

    def timeline_events(self, notification):
        return run_timeline_events(notification)

    def run_describe(self, notification):
        return run_describe(notification)

    def notifications_kept(self):
        return [WorkflowRun.objects.filter(state__in=OPEN_RUN_STATES).values("notification_id"),
                RunEvent.objects.filter(run__state=RunState.COLLECTING).values("notification_id")]

    def run_status(self, notification):
        return run_status(notification)
