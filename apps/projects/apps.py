from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "apps.projects"
    label = "projects"
    verbose_name = "Projects and API keys"

    def ready(self) -> None:
        from apps.projects import checks, schema  # noqa: F401  (register the rate check and the OpenAPI description of API keys)
