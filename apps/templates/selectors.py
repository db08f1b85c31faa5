import functools

from django.db import connections

from apps.core.exceptions import NotFound
from apps.core.rows import JoinedColumns, ModelColumns, WhereIn, where_in_together
from apps.projects.models import Project
from apps.templates.locales import locale_chain, locale_normal
from apps.templates.models import Template, TemplateVersion


def template_version_current(
    *, project: Project, key: str, locale: str = "", version: int | None = None
) -> TemplateVersion | None:
    """The version `version` if given (whatever its locale), else the newest version in the best
    locale of the fallback chain (apps/templates/locales.py)."""
    if version is not None:
        return template_versions_pinned(project=project, pins=[(key, version)]).get((key, version))
    newest = template_versions_newest(project=project, keys=[key]).get(key, [])
    return template_version_for_locale(newest, locale=locale, default_locale=project.default_locale)


def template_versions_pinned(*, project: Project, pins) -> dict[tuple[str, int], TemplateVersion]:
    """The versions named by (template key, version number) pairs, by pair: one query for any number."""
    pins = set(pins)
    if not pins:
        return {}
    versions = TemplateVersion.objects.select_related("template").filter(
        template__project=project, template__key__in={key for key, _ in pins},
        version__in={number for _, number in pins},
    )
    return {(v.template.key, v.version): v for v in versions if (v.template.key, v.version) in pins}


def template_versions_newest(*, project: Project, keys) -> dict[str, list[TemplateVersion]]:
    """The newest version of each template in each of its locales, by key: one query for any number.

    Portable (a correlated subquery rather than PostgreSQL's DISTINCT ON), so the embedded SQLite
    mode runs the same code. Written once rather than built by the ORM per call (apps/core/rows.py):
    every single POST makes this read (with the user's, as one statement: TEMPLATE_VERSIONS_NEWEST).
    """
    [by_key] = where_in_together((TEMPLATE_VERSIONS_NEWEST, [project.pk], keys))
    return by_key


_VERSION = ModelColumns(TemplateVersion, "v")
_TEMPLATE = ModelColumns(Template, "t")
_VERSION_AND_TEMPLATE = JoinedColumns(_VERSION, _TEMPLATE)


@functools.cache
def _versions_newest_columns(using: str) -> str:
    return _VERSION_AND_TEMPLATE.sql(connections[using])


@functools.cache
def _versions_newest_rest(using: str) -> str:
    connection = connections[using]
    quote = connection.ops.quote_name
    version_fields, template_fields = TemplateVersion._meta, Template._meta
    template_id = quote(version_fields.get_field("template").column)
    locale, number = quote(version_fields.get_field("locale").column), quote(version_fields.get_field("version").column)
    return (
        f"FROM {_VERSION.table(connection)} INNER JOIN {_TEMPLATE.table(connection)}"
        f" ON v.{template_id} = t.{quote(template_fields.pk.column)}"
        # The newest in its locale: the index template_version_current answers this per row.
        f" WHERE v.{number} = (SELECT n.{number} FROM {quote(version_fields.db_table)} n"
        f" WHERE n.{template_id} = v.{template_id} AND n.{locale} = v.{locale} ORDER BY n.{number} DESC LIMIT 1)"
        f" AND t.{quote(template_fields.get_field('project').column)} = %s"
        f" AND t.{quote(template_fields.get_field('key').column)} IN ("
    )


def _versions_by_key(connection, rows: list[list]) -> dict[str, list[TemplateVersion]]:
    by_key: dict[str, list[TemplateVersion]] = {}
    for row in rows:
        version, template = _VERSION_AND_TEMPLATE.load(connection, row)
        TemplateVersion.template.field.set_cached_value(version, template)  # as select_related("template")
        by_key.setdefault(template.key, []).append(version)
    return by_key


# template_versions_newest's read, for (TEMPLATE_VERSIONS_NEWEST, [project.pk], keys) in `where_in_together`.
TEMPLATE_VERSIONS_NEWEST = WhereIn(model=TemplateVersion, width=_VERSION.count + _TEMPLATE.count,
                                   columns=_versions_newest_columns, rest=_versions_newest_rest,
                                   result=_versions_by_key)


def template_version_for_locale(
    newest: list[TemplateVersion], *, locale: str, default_locale: str
) -> TemplateVersion | None:
    """Of one template's newest versions per locale, the first along the locale's fallback chain
    (`fr-CA` → `fr` → the default locale), else the newest of all."""
    by_locale: dict[str, TemplateVersion] = {}
    for version in newest:
        # Two stored spellings of one locale (`fr_CA`, `fr-CA`): the newer version wins.
        current = by_locale.get(locale_normal(version.locale))
        if current is None or version.version > current.version:
            by_locale[locale_normal(version.locale)] = version
    for wanted in locale_chain(locale=locale, default_locale=default_locale):
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
