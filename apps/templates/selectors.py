from django.db.models import OuterRef, Subquery

from apps.core.exceptions import NotFound
from apps.projects.models import Project
from apps.templates.models import Template, TemplateVersion


def template_version_current(*, project: Project, key: str, locale: str = "") -> TemplateVersion | None:
    """The newest version in the locale, else in the project's default locale, else the newest at all."""
    newest = template_versions_newest(project=project, keys=[key]).get(key, [])
    return template_version_for_locale(newest, locale=locale, default_locale=project.default_locale)


def template_versions_newest(*, project: Project, keys) -> dict[str, list[TemplateVersion]]:
    """The newest version of each template in each of its locales, by key: one query for any number.

    Portable (a correlated subquery rather than PostgreSQL's DISTINCT ON), so the embedded SQLite
    mode runs the same code.
    """
    newest_in_locale = (
        TemplateVersion.objects.filter(template=OuterRef("template"), locale=OuterRef("locale"))
        .order_by("-version").values("version")[:1]
    )
    versions = (
        TemplateVersion.objects.select_related("template")
        .filter(template__project=project, template__key__in=set(keys), version=Subquery(newest_in_locale))
    )
    by_key: dict[str, list[TemplateVersion]] = {}
    for version in versions:
        by_key.setdefault(version.template.key, []).append(version)
    return by_key


def template_version_for_locale(
    newest: list[TemplateVersion], *, locale: str, default_locale: str
) -> TemplateVersion | None:
    """Of one template's newest versions per locale: the locale's, else the default locale's, else the newest."""
    by_locale = {version.locale: version for version in newest}
    for wanted in dict.fromkeys(filter(None, [locale, default_locale])):
        if wanted in by_locale:
            return by_locale[wanted]
    return max(newest, key=lambda version: version.version, default=None)


def template_get(*, project: Project, key: str) -> Template:
    try:
        return Template.objects.get(project=project, key=key)
    except Template.DoesNotExist:
        raise NotFound(f"No template with key {key!r}.") from None


def template_versions_latest_per_locale(*, template: Template) -> list[TemplateVersion]:
    latest: dict[str, TemplateVersion] = {}
    for version in template.versions.order_by("-version"):
        latest.setdefault(version.locale, version)
    return list(latest.values())
