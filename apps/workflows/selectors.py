from django.db.models import OuterRef, Subquery

from apps.core.exceptions import NotFound
from apps.projects.models import Project
from apps.workflows.models import RunEvent, WorkflowRun, WorkflowVersion


def workflow_versions_newest(*, project: Project, keys) -> dict[str, WorkflowVersion]:
    """The newest version of each workflow among `keys`, by key: one query for any number."""
    newest = WorkflowVersion.objects.filter(workflow=OuterRef("workflow")).order_by("-version").values("version")[:1]
    versions = (WorkflowVersion.objects.select_related("workflow", "template")
                .filter(workflow__project=project, workflow__key__in=set(keys), version=Subquery(newest)))
    return {v.workflow.key: v for v in versions}


def workflow_version_newest(*, project: Project, key: str) -> WorkflowVersion:
    version = workflow_versions_newest(project=project, keys=[key]).get(key)
    if version is None:
        raise NotFound(f"No workflow with key {key!r}.")
    return version


def run_of_notification(*, notification_id) -> tuple[WorkflowRun | None, RunEvent | None]:
    """The run a notification belongs to: its own, or the digest it joined (with its event)."""
    run = (WorkflowRun.objects.select_related("version__workflow").prefetch_related("steps")
           .filter(notification_id=notification_id).first())
    if run is not None:
        return run, None
    event = RunEvent.objects.select_related("run__version__workflow").filter(notification_id=notification_id).first()
    if event is None:
        return None, None
    return event.run, event
