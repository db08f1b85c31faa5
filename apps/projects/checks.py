"""A bad NOTIFIER_API_RATE_LIMIT stops every process at start, not the first request."""

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from apps.projects.rates import rate_parse


@register()
def api_rate_limit_setting_check(app_configs, **kwargs) -> list[CheckMessage]:
    try:
        rate_parse(settings.NOTIFIER_API_RATE_LIMIT or "off")
    except ValueError as exc:
        return [Error(f"NOTIFIER_API_RATE_LIMIT: {exc}", id="projects.E001")]
    return []
