from django.db import transaction
from django.db.models import Max

from apps.core.exceptions import ApplicationError, NotFound
from apps.projects.models import Project
from apps.templates.models import Template, TemplateVersion
from apps.templates.rendering import TemplateRenderError, check_value, render_value
from apps.templates.sandbox import preview_render
from apps.templates.selectors import template_version_current
from apps.templates.variables import variables_missing, variables_required


@transaction.atomic
def template_version_create(
    *, project: Project, key: str, channels: dict, locale: str = "", strict_variables: bool | None = None
) -> TemplateVersion:
    """Add a new version of the template (creating the template on first use).

    Every part is compiled first, so a template that cannot render is refused at the door (422)
    instead of failing later in a worker; the variables each channel requires are extracted now,
    once, for the sends to check. `strict_variables` changes the template's setting when given.
    """
    errors = {
        f"channels.{channel}.{path}".rstrip("."): error
        for channel, parts in channels.items()
        for path, error in check_value(parts).items()
    }
    if errors:
        raise ApplicationError("invalid_template", "A template part does not compile.", details=errors)

    try:
        variables = variables_required(channels)
    except RecursionError:  # tags nested past what reading them back allows: refused like a compile error
        raise ApplicationError("invalid_template", "A template part is nested too deeply.",
                               details={"channels": "The template's tags are nested too deeply."}) from None
    defaults = {} if strict_variables is None else {"strict_variables": strict_variables}
    template, created = Template.objects.get_or_create(project=project, key=key, defaults=defaults)
    # Lock the template row so two concurrent PUTs cannot take the same version number.
    Template.objects.select_for_update().filter(pk=template.pk).first()
    if not created and strict_variables is not None and template.strict_variables != strict_variables:
        template.strict_variables = strict_variables
        template.save(update_fields=["strict_variables"])
    latest = template.versions.aggregate(latest=Max("version"))["latest"] or 0
    return TemplateVersion.objects.create(
        template=template, version=latest + 1, locale=locale or project.default_locale, channels=channels,
        variables=variables,
    )


def template_version_unknown(*, key: str, version: int) -> ApplicationError:
    return ApplicationError("unknown_template_version", f"Template {key!r} has no version {version}.",
                            details={"template_version": version})


def template_version_missing_variables(*, version: TemplateVersion, channels, data: dict) -> list[str]:
    """The variables the version's parts for `channels` require that `data` lacks; none when the
    template is lenient (strict_variables false). `version.template` must be loaded."""
    if not version.template.strict_variables:
        return []
    return variables_missing(required=version.variables, channels=channels, data=data)


def missing_variables_error(missing: list[str]) -> ApplicationError:
    return ApplicationError(
        "missing_variables", f"The data lacks variables the template uses: {', '.join(missing)}.",
        details={"missing_variables": missing},
    )


def template_version_render(*, version: TemplateVersion, channel: str, data: dict) -> dict:
    """The channel's parts rendered with the notification's data, e.g. {"subject": ..., "text": ...}.

    Raises TemplateRenderError when they cannot be rendered with this data (a filter failing on
    it, or output past the size or time cap): the same version fails the same way every time.
    """
    return render_value(version.channels[channel], data)


def template_preview(
    *, project: Project, key: str, data: dict, locale: str = "", template_version: int | None = None
) -> dict:
    """Every channel of the template's current version (in locale), or of `template_version`,
    rendered with data, with the variables the data lacks (`missing_variables`, whatever the
    template's strictness: a preview is where to find them).

    Rendered in a render process (apps.templates.sandbox), not in this one: a preview runs a
    template no one has sent yet. A template that cannot render this data is a 422
    `template_render_error` naming the part, e.g. {"channels.email.subject": "..."}: what
    sending it would fail with (`template_error`).
    """
    version = template_version_current(project=project, key=key, locale=locale, version=template_version)
    if version is None:
        if template_version is not None and template_version_current(project=project, key=key) is not None:
            raise template_version_unknown(key=key, version=template_version)
        raise NotFound(f"No template with key {key!r}.")
    try:
        rendered = preview_render(channels=version.channels, data=data)
    except TemplateRenderError as exc:
        raise ApplicationError(
            "template_render_error", "The template cannot be rendered with this data.",
            details={f"channels.{exc.path}": str(exc)},
        ) from exc
    missing = variables_missing(required=version.variables, channels=version.channels, data=data)
    return {"version": version.version, "locale": version.locale, "channels": rendered, "missing_variables": missing}


def template_version_preview(*, version: TemplateVersion, data: dict) -> dict:
    """One version's channels rendered with data, in a render process (as template_preview): the
    console's preview of any version, current or past. Raises TemplateRenderError as rendering does."""
    return preview_render(channels=version.channels, data=data)
