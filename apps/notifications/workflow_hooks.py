"""Where workflows (apps.workflows, a layer above this one) plug into the pipeline.

The pipeline owns intake, sending and cancelling; a workflow decides which channel goes when.
The pipeline must not import the app above it, so that app registers one object implementing
`WorkflowHooks` when it starts (its AppConfig.ready) and the pipeline calls it at four points:
resolving `workflow: key` at intake, starting runs in the inserting transaction, telling runs a
delivery settled, and cancelling a run with its notification. Without it, `workflow` is refused.
"""

from dataclasses import dataclass
from typing import Protocol

from apps.core.exceptions import ApplicationError


@dataclass(frozen=True)
class WorkflowIntake:
    """What intake needs of a workflow's newest version: its template and the channels it may use."""

    workflow_key: str
    template_key: str
    channels: list[str]
    # Data the run adds before rendering (a digest's `events`, `event_count`): not the caller's to give.
    provides: tuple[str, ...] = ()


class WorkflowHooks(Protocol):
    def intake(self, *, project, keys: set[str]) -> dict[str, WorkflowIntake]:
        """The newest version of each existing workflow among `keys`, by key."""

    def runs_start(self, *, project, started: list) -> None:
        """Start a run for each (notification, workflow key) just inserted, in the same transaction."""

    def deliveries_settled(self, *, notification_ids: list) -> None:
        """Some deliveries of these notifications reached a final status (inside the transaction
        recording it): runs waiting on them should look again once it commits."""

    def notification_cancel(self, *, notification_id) -> None:
        """Stop the run of this notification: no step not yet run will run."""

    def notifications_kept(self) -> list:
        """Querysets of notification ids (`.values("notification_id")`) that runs still open need:
        retention keeps them and their deliveries, whatever their age."""

    def run_describe(self, notification) -> dict | None:
        """The run the notification started or joined, as GET /notifications/{id} shows it."""

    def run_status(self, notification) -> str | None:
        """The status of a workflow's notification that has no delivery of its own."""

    def timeline_events(self, notification) -> list[tuple]:
        """The console timeline's rows for the notification's run: (when, channel, what, detail)."""


_hooks: WorkflowHooks | None = None


def workflow_hooks_register(hooks: WorkflowHooks) -> None:
    global _hooks
    _hooks = hooks


def workflow_hooks() -> WorkflowHooks | None:
    return _hooks


def deliveries_settled(notification_ids) -> None:
    """Called where deliveries reach a final status, inside that transaction."""
    if _hooks is not None and notification_ids:
        _hooks.deliveries_settled(notification_ids=list(dict.fromkeys(notification_ids)))


def workflows_resolve(*, project, requests, outcomes: list) -> dict[str, WorkflowIntake]:
    """The workflows the requests name, by key; a request naming one that does not exist gets its
    error in `outcomes`."""
    keys = {r.workflow_key for r in requests if r.workflow_key}
    if not keys:
        return {}
    found = _hooks.intake(project=project, keys=keys) if _hooks is not None else {}
    for index, request in enumerate(requests):
        if request.workflow_key and request.workflow_key not in found:
            outcomes[index] = ApplicationError(
                "unknown_workflow", f"No workflow with key {request.workflow_key!r}; create it with PUT "
                "/api/v1/workflows/{key}.", details={"workflow": request.workflow_key})
    return found


def workflow_runs_start(*, project, started: list) -> None:
    """Start the runs of (notification, workflow key) pairs just inserted, in their transaction."""
    if started:
        _hooks.runs_start(project=project, started=started)
