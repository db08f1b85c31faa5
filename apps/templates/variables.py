"""The data a template part cannot do without: the top-level names it reads unguarded.

Extracted once, when a version is saved (TemplateVersion.variables), so that a send checks the
caller's `data` with a set lookup instead of parsing templates. A name counts as required when the
part reads it outside any guard:

- `{{ name }}`, `{{ user.name }}` (the top-level `user` is required), a filter's argument
  `{{ price|add:tax }}`, the sequence of a `{% for %}` without an `{% empty %}` clause, the values
  of `{% with %}`;
- not when the expression has a `default` or `default_if_none` filter (`{{ name|default:"there" }}`);
- not in an `{% if %}` tag, its conditions or its branches (`{% if coupon %}Use {{ coupon }}{% endif %}`),
  nor in `{% firstof %}` (which exists to tolerate missing values);
- not names the template binds itself: loop variables, `forloop`, `{% with %}` and `as` names.
"""

from collections.abc import Iterator
from typing import Any

from django.template import Node, NodeList, Variable
from django.template.base import FilterExpression, VariableNode
from django.template.defaulttags import FirstOfNode, ForNode, IfChangedNode, IfNode, WithNode
from django.template.smartif import TokenBase

from apps.templates.rendering import HTML_PARTS, compiled_template

_TOLERANT_FILTERS = frozenset({"default", "default_if_none"})
# Nodes whose contents are guarded: what they read may be missing.
_GUARDS = (IfNode, FirstOfNode, IfChangedNode)


def variables_required(channels: dict[str, Any]) -> dict[str, list[str]]:
    """Per channel, the sorted top-level names its parts require, e.g. {"email": ["name"]}.

    `channels` is a version's parts, already known to compile (template_version_create checks first).
    """
    return {channel: sorted(_value_names(parts, html=False)) for channel, parts in channels.items()}


# Names the sending pipeline gives a channel's templates itself, per recipient, so a template may
# use them whatever the caller's data holds: an email's link to the user's preference page.
PIPELINE_VARIABLES: dict[str, frozenset[str]] = {"email": frozenset({"preferences_url"})}


def variables_missing(*, required: dict[str, list[str]], channels, data: dict) -> list[str]:
    """The names the channels' parts require that `data` lacks (and the pipeline does not give), sorted."""
    return sorted({name for channel in channels for name in required.get(channel, ())
                   if name not in data and name not in PIPELINE_VARIABLES.get(channel, ())})


def _value_names(value: Any, *, html: bool) -> set[str]:
    if isinstance(value, str):
        return _template_names(value, html=html) if ("{{" in value or "{%" in value) else set()
    if isinstance(value, dict):
        return set().union(*(_value_names(v, html=k in HTML_PARTS) for k, v in value.items()))
    if isinstance(value, list):
        return set().union(*(_value_names(v, html=html) for v in value))
    return set()


def _template_names(source: str, *, html: bool) -> set[str]:
    template = compiled_template(source, html=html)
    used: set[str] = set()
    bound: set[str] = {"forloop"}
    _walk(template.nodelist, used, bound)
    return used - bound


def _walk(nodelist: NodeList, used: set[str], bound: set[str]) -> None:
    for node in nodelist:
        _node(node, used, bound)


def _node(node: Node, used: set[str], bound: set[str]) -> None:
    if isinstance(node, _GUARDS):
        _bind_all(node, bound)
        return
    if isinstance(node, VariableNode):
        used.update(_expression_names(node.filter_expression))
        return
    if isinstance(node, ForNode):
        bound.update(node.loopvars)
        if not node.nodelist_empty:
            used.update(_expression_names(node.sequence))
        _walk(node.nodelist_loop, used, bound)
        _walk(node.nodelist_empty, used, bound)
        return
    if isinstance(node, WithNode):
        bound.update(node.extra_context)
        for expression in node.extra_context.values():
            used.update(_expression_names(expression))
        _walk(node.nodelist, used, bound)
        return
    # Any other tag: what it reads itself, then its child nodes (regroup, cycle, spaceless, ...).
    asvar = getattr(node, "asvar", None) or getattr(node, "var_name", None) or getattr(node, "variable_name", None)
    if isinstance(asvar, str):
        bound.add(asvar)
    for attribute, value in vars(node).items():
        if isinstance(value, NodeList):
            _walk(value, used, bound)
        elif attribute not in ("token", "origin"):
            used.update(_expression_names(value))


def _bind_all(node: Node, bound: set[str]) -> None:
    # Names bound inside a guard (a loop inside an if) are still the template's own, never the caller's.
    for child in node.get_nodes_by_type(Node):
        if isinstance(child, ForNode):
            bound.update(child.loopvars)
        elif isinstance(child, WithNode):
            bound.update(child.extra_context)


def _expression_names(value: Any) -> Iterator[str]:
    if isinstance(value, FilterExpression):
        if any(_filter_name(function) in _TOLERANT_FILTERS for function, _ in value.filters):
            return
        yield from _expression_names(value.var)
        for _, arguments in value.filters:
            for _, argument in arguments:
                yield from _expression_names(argument)
    elif isinstance(value, Variable):
        if value.literal is None and value.lookups:
            yield value.lookups[0]
    elif isinstance(value, TokenBase):
        yield from _expression_names(list(vars(value).values()))
    elif isinstance(value, (list, tuple)) and not isinstance(value, NodeList):
        for item in value:
            yield from _expression_names(item)
    elif isinstance(value, dict):
        yield from _expression_names(list(value.values()))


def _filter_name(function) -> str:
    return getattr(function, "_filter_name", None) or getattr(function, "__name__", "")
