from apps.core.exceptions import NotFound
from apps.projects.models import Project
from apps.templates.models import Template, TemplateVersion


def template_version_current(*, project: Project, key: str, locale: str = "") -> TemplateVersion | None:
    """The newest version in the locale, else in the project's default locale, else the newest at all."""
    versions = TemplateVersion.objects.select_related("template").filter(
        template__project=project, template__key=key
    )
    for wanted in dict.fromkeys(filter(None, [locale, project.default_locale])):
        version = versions.filter(locale=wanted).order_by("-version").first()
        if version is not None:
            return version
    return versions.order_by("-version").first()


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
