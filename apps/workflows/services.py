from django.db import transaction
from django.db.models import Max

from apps.core.exceptions import ApplicationError
from apps.projects.models import Project
from apps.templates.selectors import template_versions_newest
from apps.workflows.definitions import definition_clean
from apps.workflows.models import Workflow, WorkflowVersion


@transaction.atomic
def workflow_version_create(*, project: Project, key: str, template: str, steps, digest=None) -> WorkflowVersion:
    """Store a new version of the workflow `key` (created on its first version); nothing is
    stored when the definition is refused (422 naming the fields)."""
    newest = template_versions_newest(project=project, keys=[template]).get(template)
    if not newest:
        raise ApplicationError("invalid_workflow", "The workflow has invalid fields.",
                               details={"template": f"No template with key {template!r}."})
    template_channels = {channel for version in newest for channel in version.channels}
    clean_steps, clean_digest = definition_clean(steps=steps, digest=digest, template_channels=template_channels)
    workflow, _ = Workflow.objects.get_or_create(project=project, key=key)
    # Locked: two PUTs at once number their versions one after the other.
    Workflow.objects.select_for_update().filter(id=workflow.id).first()
    number = (workflow.versions.aggregate(newest=Max("version"))["newest"] or 0) + 1
    return WorkflowVersion.objects.create(workflow=workflow, version=number, template=newest[0].template,
                                          steps=clean_steps, digest=clean_digest)
