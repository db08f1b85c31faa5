"""Render template parts with the Django template language, sandboxed to the caller's JSON data.

The engine has no loaders, and its only builtins are apps.templates.library (Django's filters and
tags less those that amplify output or leak), so a template cannot include files, load tags or
reach model objects: all it sees is the notification's `data`.

What a template can still do with that data (loops inside loops, one large value written many
times, a value doubled by nested filters) is bounded while it renders, not after: each node's
output is counted as it is produced, each filter's result before or as it is built
(apps.templates.library), against one budget per channel (apps.templates.budget), and a
channel's rendering stops with TemplateRenderError past NOTIFIER_TEMPLATE_MAX_RENDERED_BYTES or
NOTIFIER_TEMPLATE_MAX_RENDER_SECONDS. Variables read the data's keys and indexes only
(apps.templates.lookups). Previews run this in a render process (apps.templates.sandbox).
"""

import html as html_escaping
import threading
import time
from collections import OrderedDict
from typing import Any

from django.conf import settings
from django.template import Context, Engine, Node, TemplateSyntaxError, Variable
from django.template.base import TextNode, VariableNode
from django.template.defaulttags import ForNode

from apps.templates.budget import Budget, TemplateRenderError, budget_active, budget_current
from apps.templates.lookups import variables_restrict


class _SandboxEngine(Engine):
    # Replaces Django's builtins (defaulttags, defaultfilters, loader_tags) instead of adding to
    # them: `{{ x|ljust:"300000000" }}` or `{% lorem 100000000 w %}` would allocate hundreds of
    # MB, and `{% debug %}` dumps the context. This is how Engine itself names its builtins.
    default_builtins = ["apps.templates.library"]


_TEXT_ENGINE = _SandboxEngine(dirs=[], app_dirs=False, loaders=[], autoescape=False)
_HTML_ENGINE = _SandboxEngine(dirs=[], app_dirs=False, loaders=[], autoescape=True)

# Parts that are HTML and so get autoescaping; everything else is plain text.
HTML_PARTS = frozenset({"html"})

__all__ = ["HTML_PARTS", "TemplateRenderError", "check_value", "compile_check", "compiled_template", "render_value"]


def _meter(node: Node) -> None:
    # Every node renders through render_annotated (NodeList.render, ForNode's loop), so wrapping
    # it on each node of a compiled template counts all output as it is produced. Django offers
    # no hook for this.
    render_annotated = node.render_annotated

    def render(context):
        budget = budget_current()
        before = budget.pending_chars
        output = render_annotated(context)
        # The output includes what the node's children produced and already counted: count it once.
        budget.pending_chars = before + len(output)
        budget.check()
        return output

    node.render_annotated = render


def _compile(source: str, html: bool):
    template = (_HTML_ENGINE if html else _TEXT_ENGINE).from_string(source)
    nodes = template.nodelist.get_nodes_by_type(Node)
    for node in nodes:
        _meter(node)
        variables_restrict(node)
        if isinstance(node, ForNode):
            # An empty loop body renders nothing, so nested loops could spin without a check:
            # one more (empty) node per iteration brings the deadline check into every one.
            tick = TextNode("")
            _meter(tick)
            node.nodelist_loop.append(tick)
    # What the compiled template holds, roughly: measured with tracemalloc, a node with its
    # filter expressions takes 0.7 to 2.2 KB besides the source text.
    template.estimated_bytes = len(source) + _BYTES_PER_NODE * len(nodes)
    template.plain_parts = _plain_parts(template.nodelist)
    return template


def _plain_parts(nodelist) -> tuple | None:
    """A template of text and `{{ key }}` / `{{ key.key }}` variables only (no filter, tag or
    literal), as (text, None) and (None, the variable's keys) parts; None for any other template.

    Most notification templates are this, and Django's render (a Context, each node's render
    and the meter around it, localisation, escaping) cost 32 µs of a worker's CPU for a subject
    and a sentence with three variables: `_plain_render` joins the same output in a few.
    """
    parts = []
    for node in nodelist:
        if isinstance(node, TextNode):
            parts.append((node.s, None))
        elif isinstance(node, VariableNode) and _plain_variable(node.filter_expression):
            parts.append((None, node.filter_expression.var.lookups))
        else:
            return None
    return tuple(parts)


def _plain_variable(expression) -> bool:
    # A literal (`{{ "text" }}`, `{{ 3 }}`, `{{ _("text") }}`, translated) has no lookups.
    variable = expression.var
    return not expression.filters and isinstance(variable, Variable) and variable.lookups is not None


def _plain_render(parts: tuple, data: dict, *, html: bool) -> str | None:
    """What Django renders for a template of `_plain_parts` when each variable's value is a key's
    str or int (not bool); None when one is anything else (missing, a float, a list...), which
    Django's own render then takes, so the output never differs: an int renders as str() does
    without thousands separators (USE_THOUSAND_SEPARATOR, off by default, turns this path off),
    and HTML parts escape as Django's escape() (html.escape)."""
    if settings.USE_THOUSAND_SEPARATOR:
        return None
    output = []
    for text, lookups in parts:
        if lookups is None:
            output.append(text)
            continue
        value = data
        for key in lookups:
            if type(value) is not dict or key not in value:
                return None
            value = value[key]
        if type(value) is str:
            output.append(html_escaping.escape(value) if html else value)
        elif type(value) is int:
            output.append(str(value))
        else:
            return None
    return "".join(output)


_BYTES_PER_NODE = 2048


class _CompiledCache:
    """Compiled parts by (source, html), least recently used first out, bounded in bytes.

    Versions are immutable, so a compiled part can be reused for as long as the process lives;
    but a count of entries bounds nothing (one 64 KB part of 8,000 tags compiles to 6 MB), so
    the bound is NOTIFIER_TEMPLATE_CACHE_MAX_BYTES of estimated size. Renders run in threads
    (the web process) and the cache is shared by them.
    """

    def __init__(self):
        self._entries: OrderedDict[tuple[str, bool], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.size = 0

    def get(self, source: str, html: bool):
        key = (source, html)
        with self._lock:
            template = self._entries.get(key)
            if template is not None:
                self._entries.move_to_end(key)
                return template
        template = _compile(source, html)
        max_bytes = settings.NOTIFIER_TEMPLATE_CACHE_MAX_BYTES
        if template.estimated_bytes > max_bytes // 4:
            return template  # one part alone would crowd out the others: compiled each time
        with self._lock:
            if key not in self._entries:
                self._entries[key] = template
                self.size += template.estimated_bytes
            while self.size > max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.size -= evicted.estimated_bytes
        return template

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.size = 0


compiled_cache = _CompiledCache()


def compile_check(source: str, *, html: bool = False) -> None:
    """Raise TemplateRenderError if the source is not a valid template, or uses a filter or tag not allowed."""
    try:
        _compile(source, html)  # not cached: a template saved is not yet one being sent
    except TemplateSyntaxError as exc:
        raise TemplateRenderError(str(exc)) from exc
    except RecursionError:
        raise TemplateRenderError("The template's tags are nested too deeply.") from None


def compiled_template(source: str, *, html: bool = False):
    """The compiled template of a source known to compile (not cached: for reading its nodes)."""
    return _compile(source, html)


def render_value(
    value: Any, data: dict, *, html: bool = False, max_bytes: int | None = None, max_seconds: float | None = None
) -> Any:
    """Render every string inside value (nested dicts and lists too) with data as the context.

    Raises TemplateRenderError when a filter fails on this data, or when the whole of value's
    output passes max_bytes (NOTIFIER_TEMPLATE_MAX_RENDERED_BYTES), a filter would build a value
    past it, or rendering takes longer than max_seconds (NOTIFIER_TEMPLATE_MAX_RENDER_SECONDS).
    """
    with budget_active(Budget(max_bytes=max_bytes, max_seconds=max_seconds)) as budget:
        return _render(value, data, html=html, budget=budget, path="")


def _render(value: Any, data: dict, *, html: bool, budget: Budget, path: str) -> Any:
    if isinstance(value, str):
        return _render_string(value, data, html=html, budget=budget, path=path)
    if isinstance(value, dict):
        return {
            k: _render(v, data, html=k in HTML_PARTS, budget=budget, path=f"{path}.{k}".lstrip("."))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _render(v, data, html=html, budget=budget, path=f"{path}.{index}".lstrip("."))
            for index, v in enumerate(value)
        ]
    return value


def _render_string(source: str, data: dict, *, html: bool, budget: Budget, path: str) -> str:
    budget.pending_chars = 0
    try:
        compiling = time.monotonic()
        template = compiled_cache.get(source, html)
        # Compiling is not the template's doing at render time (it compiled when saved, and its
        # size is bounded by the request's): a part compiled anew on a busy machine keeps its time.
        budget.deadline += time.monotonic() - compiling
        output = _plain_render(template.plain_parts, data, html=html) if template.plain_parts is not None else None
        if output is None:
            output = template.render(Context(data, autoescape=html))
        budget.pending_chars = 0
        budget.rendered_bytes += len(output.encode(errors="replace"))
        budget.check()
    except TemplateRenderError as exc:
        raise TemplateRenderError(str(exc), path=path) from exc
    except Exception as exc:
        # The template and the data are both the caller's: whatever a filter raises on them (a
        # ValueError from wordwrap:"x", a ZeroDivisionError from divisibleby:0, a RecursionError
        # from a deep list) is a template that cannot render this data, not a server error.
        raise TemplateRenderError(f"{type(exc).__name__}: {exc}", path=path) from exc
    return output


def check_value(value: Any, *, html: bool = False) -> dict[str, str]:
    """Compile every string inside value; return {dotted.path: error} for those that fail."""
    errors: dict[str, str] = {}
    if isinstance(value, str):
        try:
            compile_check(value, html=html)
        except TemplateRenderError as exc:
            errors[""] = str(exc)
    elif isinstance(value, dict):
        for key, item in value.items():
            for path, error in check_value(item, html=key in HTML_PARTS).items():
                errors[f"{key}.{path}".rstrip(".")] = error
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for path, error in check_value(item, html=html).items():
                errors[f"{index}.{path}".rstrip(".")] = error
    return errors
