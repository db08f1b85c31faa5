from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "apps.workflows"
    label = "workflows"
    verbose_name = "Workflows"

    def ready(self) -> None:
        # The pipeline below calls workflows through these hooks; it never imports this app.
        from apps.notifications.workflow_hooks import workflow_hooks_register
        from apps.workflows.hooks import PipelineHooks

        workflow_hooks_register(PipelineHooks())
