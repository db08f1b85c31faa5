from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from apps.projects.models import ApiKey, Project
from apps.projects.services import api_key_hash

# How stale a key's last_used_at may get: authentication writes it at most this often per key, so
# the API's hot path reads the key and, in the steady state, writes nothing.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_get_active(*, raw_key: str) -> ApiKey | None:
    return (
        ApiKey.objects.select_related("project")
        .filter(key_hash=api_key_hash(raw_key), revoked_at__isnull=True)
        .first()
    )


def project_find(*, name: str) -> Project | None:
    return Project.objects.filter(name=name).first()


def category_is_critical(*, project: Project, category: str) -> bool:
    """True if the project's users cannot opt out of this category (preferences, unsubscribe)."""
    return bool(category) and category in (project.critical_categories or [])


def api_key_touch(*, api_key: ApiKey) -> None:
    """Note that the key was used now, unless that was noted less than a minute ago.

    Decided on the row already read, so a request costs no write while the mark is fresh; the
    UPDATE is conditional, so processes racing past the same minute write it once between them.
    """
    now = timezone.now()
    if api_key.last_used_at is not None and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION), pk=api_key.pk
    ).update(last_used_at=now)
    api_key.last_used_at = now


def project_webhook_secrets(*, project: Project) -> tuple[str, ...]:
    """The secrets that sign the project's webhooks and status webhooks now: the current one
    first, then the one it replaced while its rotation lasts (services.project_update). Empty
    when the project has no secret."""
    if not project.webhook_secret:
        return ()
    previous_until = project.webhook_secret_previous_until
    if project.webhook_secret_previous and previous_until and previous_until > timezone.now():
        return (project.webhook_secret, project.webhook_secret_previous)
    return (project.webhook_secret,)
