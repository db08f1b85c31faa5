from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "apps.channels"
    # "channels" is Django Channels' label; ours must not collide with it if that is ever installed.
    label = "notification_channels"
    verbose_name = "Channel backends"

    def ready(self) -> None:
        from apps.channels import checks  # noqa: F401  (registers the system checks)
