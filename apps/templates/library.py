"""The filters and tags a notification template may use: Django's builtins, bounded, less the unsafe ones.

Templates are written by any API key holder and rendered on our servers, so this is an
allowlist of Django's own: a filter or tag left out is unknown to the engine
(apps.templates.rendering loads this module as its only builtin library), and a template
using it is refused when saved (422 invalid_template).

Every filter kept runs metered (`_metered`): the value it returns is accounted to the render's
budget (apps.templates.budget), so no value grows past the output cap, chained or nested, and the
clock is checked between filters. Where a filter's result can outgrow its input by more than a
constant factor, its size is estimated from the input and refused before it is built
(`_ESTIMATES`). The others build at most a few times their input (escape: 6x, urlize: 5x,
linebreaksbr: 4x), and their input is itself a value already bounded by the cap.
Each of Django's builtins, and why it is safe, refused, or replaced, is listed in
tests/templates/test_library.py.
"""

import functools
from collections.abc import Callable

from django.template import Library, TemplateSyntaxError, defaultfilters, defaulttags

from apps.templates.budget import budget_current
from apps.templates.html import strip_tags, truncate_html

# Each writes as many characters as a number in the template says: `{{ x|ljust:"300000000" }}`
# allocates 300 MB, and so does `{{ x|stringformat:"300000000s" }}`. pprint is for debugging:
# it indents by nesting depth (a deep list grows quadratically) and shows Python reprs.
EXCLUDED_FILTERS = frozenset({"ljust", "rjust", "center", "stringformat", "pprint"})
EXCLUDED_TAGS = frozenset({
    "lorem",  # any amount of text: {% lorem 100000000 w %}
    "debug",  # dumps the context and the server's loaded modules
    "url",  # reverses this server's own routes; a notification has no use for them
    "csrf_token", "querystring",  # read a request that notification rendering does not have
    "load",  # the engine has no libraries to load
})
# floatformat's decimal places come from the template too: floatformat:"999999" writes a million digits.
MAX_FLOATFORMAT_PLACES = 30
# {% now %} writes up to ~30 characters per character of its format ("r" is a whole date).
MAX_NOW_FORMAT_CHARS = 100

register = Library()
register.filters.update(
    (name, function) for name, function in defaultfilters.register.filters.items() if name not in EXCLUDED_FILTERS
)
register.tags.update((name, function) for name, function in defaulttags.register.tags.items() if name not in EXCLUDED_TAGS)


# The filters below stand in for Django's filters of the same name; a ValueError they raise becomes
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


@register.filter(is_safe=True)
@defaultfilters.stringfilter
def truncatechars_html(value, arg):
    """Django's truncatechars_html in linear time, stopping at the render's deadline.

    Django's builds its output by `self.output += ...`, a copy per tag: 900 KB of tags took 10 s.
    """
    return truncate_html(value, arg, words=False, budget=budget_current())


@register.filter(is_safe=True)
@defaultfilters.stringfilter
def truncatewords_html(value, arg):
    """Django's truncatewords_html in linear time, stopping at the render's deadline."""
    return truncate_html(value, arg, words=True, budget=budget_current())


@register.filter(is_safe=True)
@defaultfilters.stringfilter
def striptags(value):
    """Django's striptags, stopping at the render's deadline (it may parse the value 50 times over)."""
    return strip_tags(value, budget=budget_current())


@register.tag
def now(parser, token):
    """Django's {% now %}, with a format of at most MAX_NOW_FORMAT_CHARS characters (checked when saved)."""
    node = defaulttags.now(parser, token)
    if len(node.format_string) > MAX_NOW_FORMAT_CHARS:
        raise TemplateSyntaxError(f"now's format is at most {MAX_NOW_FORMAT_CHARS} characters.")
    return node


# --- Sizes known before building ------------------------------------------------------------------


def _sized(value) -> bool:
    return isinstance(value, (str, list, tuple))


def _add_size(value, arg) -> int:
    # add tries int + int first (its result is as long as the longer number, plus one digit),
    # then value + arg: two strings or two lists concatenated.
    return len(value) + len(arg) if _sized(value) and _sized(arg) else 0


def _join_size(value, arg, autoescape=True) -> int:
    # The separator is repeated once per item: a list of 1,000 items joined with a 1 MB string
    # would be 1 GB, all allocated before any check on the output could see it.
    if not (_sized(value) and isinstance(arg, str)):
        return 0
    return len(arg) * max(len(value) - 1, 0) + sum(len(item) for item in value if isinstance(item, str))


def _linenumbers_size(value, autoescape=True) -> int:
    text = str(value)
    lines = text.count("\n") + 1
    return len(text) + lines * (len(str(lines)) + 2)  # each line gains "NNN. "


def _unordered_list_size(value, autoescape=True) -> int:
    # Each item is written on its own line indented by its depth, with <li></li> around it: a
    # long list deep inside others costs depth x items.
    size, pending = 0, [(value, 1)]
    while pending:
        items, depth = pending.pop()
        for item in items if isinstance(items, (list, tuple)) else ():
            if isinstance(item, (list, tuple)):
                pending.append((item, depth + 1))
                size += 2 * depth + 20  # the <ul> around a sublist
            else:
                size += depth + 10 + len(str(item))
    return size


_ESTIMATES: dict[str, Callable[..., int]] = {
    "add": _add_size,
    "join": _join_size,
    "linenumbers": _linenumbers_size,
    "unordered_list": _unordered_list_size,
}


def _size(result) -> int:
    if isinstance(result, str):
        return len(result)
    if isinstance(result, (list, tuple)):
        return len(result) + sum(len(item) for item in result if isinstance(item, str))
    return 0


def _metered(name: str, function: Callable) -> Callable:
    estimate = _ESTIMATES.get(name)

    # functools.wraps keeps what Django reads from a filter: is_safe, needs_autoescape,
    # expects_localtime (copied from __dict__) and the signature (through __wrapped__).
    @functools.wraps(function)
    def metered(value, *args, **kwargs):
        budget = budget_current()
        if estimate is not None:
            budget.allow(estimate(value, *args, **kwargs), what=name)
        result = function(value, *args, **kwargs)
        budget.spend(_size(result), what=name)
        return result

    return metered


register.filters.update((name, _metered(name, function)) for name, function in register.filters.items())
