"""The filters and tags a notification template may use: Django's builtins less the unsafe ones.

Templates are written by any API key holder and rendered on our servers, so this is an
allowlist of Django's own: a filter or tag left out is unknown to the engine
(apps.templates.rendering loads this module as its only builtin library), and a template
using it is refused when saved (422 invalid_template).
"""

from django.conf import settings
from django.template import Library, defaultfilters, defaulttags

# Each writes as many characters as a number in the template says: `{{ x|ljust:"300000000" }}`
# allocates 300 MB, and so does `{{ x|stringformat:"300000000s" }}`.
EXCLUDED_FILTERS = frozenset({"ljust", "rjust", "center", "stringformat"})
EXCLUDED_TAGS = frozenset({
    "lorem",  # any amount of text: {% lorem 100000000 w %}
    "debug",  # dumps the context and the server's loaded modules
    "url",  # reverses this server's own routes; a notification has no use for them
    "csrf_token", "querystring",  # read a request that notification rendering does not have
    "load",  # the engine has no libraries to load
})
# floatformat's decimal places come from the template too: floatformat:"999999" writes a million digits.
MAX_FLOATFORMAT_PLACES = 30

register = Library()
register.filters.update(
    (name, function) for name, function in defaultfilters.register.filters.items() if name not in EXCLUDED_FILTERS
)
register.tags.update((name, function) for name, function in defaulttags.register.tags.items() if name not in EXCLUDED_TAGS)


# The two below stand in for Django's filters of the same name; a ValueError they raise becomes
# a TemplateRenderError (apps.templates.rendering.render_value).


@register.filter(is_safe=True)
def floatformat(text, arg=-1):
    """Django's floatformat, with at most MAX_FLOATFORMAT_PLACES decimal places."""
    try:
        places = abs(int(str(arg).rstrip("gu")))
    except ValueError:
        places = 0  # not a number: Django's filter handles it (it returns the value unchanged)
    if places > MAX_FLOATFORMAT_PLACES:
        raise ValueError(f"floatformat shows at most {MAX_FLOATFORMAT_PLACES} decimal places, not {places}.")
    return defaultfilters.floatformat(text, arg)


@register.filter(is_safe=True, needs_autoescape=True)
def join(value, arg, autoescape=True):
    """Django's join, refused before it starts when the separators alone pass the rendered-size cap.

    The separator is repeated once per item: a list of 1,000 items joined with a 1 MB string
    would be 1 GB, all allocated before the cap on the output could see it.
    """
    if isinstance(arg, str) and hasattr(value, "__len__"):
        separators = len(arg) * max(len(value) - 1, 0)
        if separators > settings.NOTIFIER_TEMPLATE_MAX_RENDERED_BYTES:
            raise ValueError(f"join would make the output larger than {settings.NOTIFIER_TEMPLATE_MAX_RENDERED_BYTES} bytes.")
    return defaultfilters.join(value, arg, autoescape=autoescape)
