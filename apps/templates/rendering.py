"""Render template parts with the Django template language, sandboxed to the caller's JSON data.

The engine has no loaders, and its only builtins are apps.templates.library (Django's filters and
tags less those that amplify output or leak), so a template cannot include files, load tags or
reach model objects: all it sees is the notification's `data`.

What a template can still do with that data (loops inside loops, one large value written many
times) is bounded while it renders, not after: each node's output is counted as it is produced,
and a channel's rendering stops with TemplateRenderError past NOTIFIER_TEMPLATE_MAX_RENDERED_BYTES
of output or NOTIFIER_TEMPLATE_MAX_RENDER_SECONDS.
"""

import time
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.template import Context, Engine, Node, TemplateSyntaxError
from django.template.base import TextNode
from django.template.defaulttags import ForNode


class _SandboxEngine(Engine):
    # Replaces Django's builtins (defaulttags, defaultfilters, loader_tags) instead of adding to
    # them: `{{ x|ljust:"300000000" }}` or `{% lorem 100000000 w %}` would allocate hundreds of
    # MB, and `{% debug %}` dumps the context. This is how Engine itself names its builtins.
    default_builtins = ["apps.templates.library"]


_TEXT_ENGINE = _SandboxEngine(dirs=[], app_dirs=False, loaders=[], autoescape=False)
_HTML_ENGINE = _SandboxEngine(dirs=[], app_dirs=False, loaders=[], autoescape=True)

# Parts that are HTML and so get autoescaping; everything else is plain text.
HTML_PARTS = frozenset({"html"})

# Compiled templates are kept for reuse, but not large ones: the cache would hold them all.
_CACHED_SOURCE_MAX_CHARS = 64 * 1024


class TemplateRenderError(Exception):
    def __init__(self, message: str, *, path: str = ""):
        super().__init__(message)
        self.path = path  # the failing part inside the rendered value, e.g. "subject" or "user.name"


class _Budget:
    """What one render_value call may still spend, checked after every template node."""

    def __init__(self):
        self.max_bytes = settings.NOTIFIER_TEMPLATE_MAX_RENDERED_BYTES
        self.max_seconds = settings.NOTIFIER_TEMPLATE_MAX_RENDER_SECONDS
        self.deadline = time.monotonic() + self.max_seconds
        self.rendered_bytes = 0  # the parts already rendered
        self.pending_chars = 0  # the part being rendered, so far (a character is at least a byte)

    def check(self) -> None:
        if self.rendered_bytes + self.pending_chars > self.max_bytes:
            raise TemplateRenderError(f"The rendered content is larger than {self.max_bytes} bytes.")
        if time.monotonic() > self.deadline:
            raise TemplateRenderError(f"Rendering took longer than {self.max_seconds:g} seconds.")


class _BudgetedContext(Context):
    def __init__(self, data: dict, *, autoescape: bool, budget: _Budget):
        super().__init__(data, autoescape=autoescape)
        self.budget = budget  # kept by the copies Django makes of a context


def _meter(node: Node) -> None:
    # Every node renders through render_annotated (NodeList.render, ForNode's loop), so wrapping
    # it on each node of a compiled template counts all output as it is produced. Django offers
    # no hook for this.
    render_annotated = node.render_annotated

    def render(context):
        budget = context.budget
        before = budget.pending_chars
        output = render_annotated(context)
        # The output includes what the node's children produced and already counted: count it once.
        budget.pending_chars = before + len(output)
        budget.check()
        return output

    node.render_annotated = render


def _compile(source: str, html: bool):
    template = (_HTML_ENGINE if html else _TEXT_ENGINE).from_string(source)
    for node in template.nodelist.get_nodes_by_type(Node):
        _meter(node)
        if isinstance(node, ForNode):
            # An empty loop body renders nothing, so nested loops could spin without a check:
            # one more (empty) node per iteration brings the deadline check into every one.
            tick = TextNode("")
            _meter(tick)
            node.nodelist_loop.append(tick)
    return template


# Versions are immutable, so a compiled part can be reused for as long as the process lives.
_compile_cached = lru_cache(maxsize=2048)(_compile)


def compile_check(source: str, *, html: bool = False) -> None:
    """Raise TemplateRenderError if the source is not a valid template, or uses a filter or tag not allowed."""
    try:
        _compile(source, html)  # not cached: a template saved is not yet one being sent
    except TemplateSyntaxError as exc:
        raise TemplateRenderError(str(exc)) from exc
    except RecursionError:
        raise TemplateRenderError("The template's tags are nested too deeply.") from None


def render_value(value: Any, data: dict, *, html: bool = False) -> Any:
    """Render every string inside value (nested dicts and lists too) with data as the context.

    Raises TemplateRenderError when a filter fails on this data, or when the whole of value's
    output passes NOTIFIER_TEMPLATE_MAX_RENDERED_BYTES or takes longer than
    NOTIFIER_TEMPLATE_MAX_RENDER_SECONDS to render.
    """
    return _render(value, data, html=html, budget=_Budget(), path="")


def _render(value: Any, data: dict, *, html: bool, budget: _Budget, path: str) -> Any:
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


def _render_string(source: str, data: dict, *, html: bool, budget: _Budget, path: str) -> str:
    budget.pending_chars = 0
    try:
        template = _compile_cached(source, html) if len(source) <= _CACHED_SOURCE_MAX_CHARS else _compile(source, html)
        output = template.render(_BudgetedContext(data, autoescape=html, budget=budget))
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
