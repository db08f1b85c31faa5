from django.apps import AppConfig


class ErasureConfig(AppConfig):
    """No models: installed for its admin, which gives the users' console page its erasing delete."""

    name = "apps.erasure"
    label = "erasure"
    verbose_name = "Erasure"
