from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "apps.projects"
    label = "projects"
    verbose_name = "Projects and API keys"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from apps.projects import checks, schema  # noqa: F401  (register the rate check and the OpenAPI description of API keys)
        from apps.projects.key_cache import api_key_cache_clear
        from apps.projects.models import ApiKey, Project

        # A key or project saved here is seen at once by this process's requests (key_cache.py).
        for model in (ApiKey, Project):
            post_save.connect(api_key_cache_clear, sender=model, dispatch_uid=f"api_key_cache_clear_{model.__name__}_save")
            post_delete.connect(api_key_cache_clear, sender=model,
                                dispatch_uid=f"api_key_cache_clear_{model.__name__}_delete")
