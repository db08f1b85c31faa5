"""The console's index and sidebar: the pipeline's pages first, and the tables of the libraries
we run on gathered last under "System", without the ones operators never open."""

from django import template

register = template.Library()

SYSTEM_SECTION = "System"
# Installed apps whose tables only support the service: the sweeps' last Celery results
# (docs/operations.md, retention), and django-axes' admin login lockouts.
SYSTEM_APPS = ("django_celery_results", "axes")
# Registered by those libraries, but never read by an operator: Celery group results (the
# service makes no groups) and axes' raw logs of every login and failed login. Their pages
# stay at their addresses; they are only left out of the lists.
UNLISTED_MODELS = frozenset({("django_celery_results", "GroupResult"), ("axes", "AccessLog"),
                             ("axes", "AccessFailureLog")})


@register.filter
def console_sections(app_list: list[dict]) -> list[dict]:
    """The admin's app list (index page or sidebar) with the library apps moved into one
    "System" section at the end, each model's name saying which library it is from."""
    sections, system_models, system_url = [], [], ""
    for app in app_list:
        if app["app_label"] not in SYSTEM_APPS:
            sections.append(app)
            continue
        system_url = system_url or app["app_url"]
        system_models += [
            {**model, "name": f"{model['name']} ({app['name']})"}
            for model in app["models"] if (app["app_label"], model["object_name"]) not in UNLISTED_MODELS
        ]
    if system_models:
        sections.append({"name": SYSTEM_SECTION, "app_label": "system", "app_url": system_url,
                         "has_module_perms": True, "models": system_models})
    return sections
