"""Variables in our templates look up keys and indexes in the data, never its methods.

Django resolves `{{ a.b }}` as a[b], else getattr(a, b), else a[int(b)], and calls what it finds
when it is callable. On JSON data, getattr only ever finds methods of str, list, dict and
numbers, and calling them builds values no filter accounts for: `{% with a=s.expandtabs
b=s.expandtabs ... %}` holds eight times the data per name, tens of thousands of names in one
template. So in a compiled template every variable resolves dict keys (and a dict's items,
keys and values, views that copy nothing: `{% for k, v in d.items %}`), list and string
indexes, and the fields of regroup's groups; anything else is missing (rendered as "").
`{{ name.upper }}` is therefore empty: `{{ name|upper }}` is the filter that does it.
"""

from collections.abc import Iterator

from django.template import Node, NodeList, Variable, VariableDoesNotExist
from django.template.base import BaseContext, FilterExpression
from django.template.smartif import TokenBase


def variables_restrict(node: Node) -> None:
    """Make every variable the node holds (outside its child nodes) resolve as described above."""
    for value in vars(node).values():
        if not isinstance(value, NodeList):
            for variable in _variables(value):
                variable.__class__ = _DataVariable  # Variable has __slots__: no attribute can be set per instance


def _variables(value) -> Iterator[Variable]:
    if isinstance(value, Variable):
        yield value
    elif isinstance(value, FilterExpression):
        yield from _variables(value.var)
        for _, arguments in value.filters:
            for _, argument in arguments:
                yield from _variables(argument)
    elif isinstance(value, TokenBase):  # {% if %}'s conditions: operators over literals
        yield from _variables(list(vars(value).values()))
    elif isinstance(value, (list, tuple)) and not isinstance(value, NodeList):
        for item in value:
            yield from _variables(item)
    elif isinstance(value, dict):
        yield from _variables(list(value.values()))


_DICT_VIEWS = frozenset({"items", "keys", "values"})


class _DataVariable(Variable):
    __slots__ = ()

    def _resolve_lookup(self, context):
        return _resolve_lookup(self.lookups, context)


def _resolve_lookup(lookups: tuple[str, ...], context):
    current = context
    for bit in lookups:
        try:
            if isinstance(current, dict) and bit in _DICT_VIEWS and bit not in current:
                current = getattr(current, bit)()  # as in Django, a key of that name comes first
            elif isinstance(current, (BaseContext, dict)):
                current = current[bit]
            elif isinstance(current, tuple) and bit in getattr(current, "_fields", ()):
                current = getattr(current, bit)  # regroup's GroupedResult(grouper, list)
            elif isinstance(current, (list, tuple, str)):
                current = current[int(bit)]
            else:
                raise LookupError(bit)
        except (LookupError, ValueError, TypeError):
            raise VariableDoesNotExist("Failed lookup for key [%s] in %r", (bit, current)) from None
    return current
