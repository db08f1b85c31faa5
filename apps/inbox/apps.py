from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "apps.inbox"
    label = "inbox"
    verbose_name = "In-app inbox"

    def ready(self) -> None:
        from apps.inbox import schema  # noqa: F401  (registers the OpenAPI description of user tokens)
