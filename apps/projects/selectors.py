from apps.projects.models import ApiKey
from apps.projects.services import api_key_hash


def api_key_get_active(*, raw_key: str) -> ApiKey | None:
    return (
        ApiKey.objects.select_related("project")
        .filter(key_hash=api_key_hash(raw_key), revoked_at__isnull=True)
        .first()
    )
