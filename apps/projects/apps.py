from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "apps.projects"
    label = "projects"
    verbose_name = "Projects and API keys"

    def ready(self) -> None:
        from apps.projects import schema  # noqa: F401  (registers the OpenAPI description of API keys)
