from django.db import transaction
from django.db.models import Max

from apps.core.exceptions import ApplicationError, NotFound
from apps.projects.models import Project
from apps.templates.models import Template, TemplateVersion
from apps.templates.rendering import TemplateRenderError, check_value, render_value
from apps.templates.sandbox import preview_render
from apps.templates.selectors import template_version_current


@transaction.atomic
def template_version_create(*, project: Project, key: str, channels: dict, locale: str = "") -> TemplateVersion:
    """Add a new version of the template (creating the template on first use).

    Every part is compiled first, so a template that cannot render is refused at the door (422)
    instead of failing later in a worker.
    """
    errors = {
        f"channels.{channel}.{path}".rstrip("."): error
        for channel, parts in channels.items()
        for path, error in check_value(parts).items()
    }
    if errors:
        raise ApplicationError("invalid_template", "A template part does not compile.", details=errors)

    template, _ = Template.objects.get_or_create(project=project, key=key)
    # Lock the template row so two concurrent PUTs cannot take the same version number.
    Template.objects.select_for_update().filter(pk=template.pk).first()
    latest = template.versions.aggregate(latest=Max("version"))["latest"] or 0
    return TemplateVersion.objects.create(
        template=template, version=latest + 1, locale=locale or project.default_locale, channels=channels
    )


def template_version_render(*, version: TemplateVersion, channel: str, data: dict) -> dict:
    """The channel's parts rendered with the notification's data, e.g. {"subject": ..., "text": ...}.

    Raises TemplateRenderError when they cannot be rendered with this data (a filter failing on
    it, or output past the size or time cap): the same version fails the same way every time.
    """
    return render_value(version.channels[channel], data)


def template_preview(*, project: Project, key: str, data: dict, locale: str = "") -> dict:
    """Every channel of the template's current version (in locale) rendered with data.

    Rendered in a render process (apps.templates.sandbox), not in this one: a preview runs a
    template no one has sent yet. A template that cannot render this data is a 422
    `template_render_error` naming the part, e.g. {"channels.email.subject": "..."}: what
    sending it would fail with (`template_error`).
    """
    version = template_version_current(project=project, key=key, locale=locale)
    if version is None:
        raise NotFound(f"No template with key {key!r}.")
    try:
        rendered = preview_render(channels=version.channels, data=data)
    except TemplateRenderError as exc:
        raise ApplicationError(
            "template_render_error", "The template cannot be rendered with this data.",
            details={f"channels.{exc.path}": str(exc)},
        ) from exc
    return {"version": version.version, "locale": version.locale, "channels": rendered}


def template_version_preview(*, version: TemplateVersion, data: dict) -> dict:
    """One version's channels rendered with data, in a render process (as template_preview): the
    console's preview of any version, current or past. Raises TemplateRenderError as rendering does."""
    return preview_render(channels=version.channels, data=data)
