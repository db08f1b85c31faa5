from apps.projects.models import ApiKey, Project
from apps.projects.services import api_key_hash


def api_key_get_active(*, raw_key: str) -> ApiKey | None:
    return (
        ApiKey.objects.select_related("project")
        .filter(key_hash=api_key_hash(raw_key), revoked_at__isnull=True)
        .first()
    )


def category_is_critical(*, project: Project, category: str) -> bool:
    """True if the project's users cannot opt out of this category (preferences, unsubscribe)."""
    return bool(category) and category in (project.critical_categories or [])
