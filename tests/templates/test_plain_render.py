"""A template of text and plain variables renders without Django's template machinery
(rendering.py, `_plain_render`), and must render exactly what Django renders: same escaping in
HTML, same numbers, and Django's own render for every value it does not take."""

import pytest
from django.template import Context
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.templates.rendering import _plain_parts, _plain_render, compiled_template, render_value

TEXT = st.text(alphabet=st.sampled_from(list("ab Z.,!\n\t<>&\"'=;é€")), max_size=12)
NAMES = st.sampled_from(["name", "order", "a.b", "a.items", "missing", "a.b.c"])
VALUES = st.one_of(st.text(max_size=8), st.integers(-10**12, 10**12), st.booleans(), st.floats(allow_nan=False),
                   st.none(), st.lists(st.integers(), max_size=2))
DATA = st.fixed_dictionaries({"name": VALUES, "order": VALUES, "a": st.one_of(
    VALUES, st.fixed_dictionaries({"b": VALUES}), st.fixed_dictionaries({"b": st.fixed_dictionaries({"c": VALUES})}))})


def django_render(source: str, data: dict, html: bool) -> str:
    return compiled_template(source, html=html).render(Context(data, autoescape=html))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(TEXT, NAMES.map(lambda name: "{{ " + name + " }}")), max_size=6), DATA, st.booleans())
def test_a_plain_template_renders_what_django_renders(pieces, data, html):
    source = "".join(pieces)
    parts = _plain_parts(compiled_template(source, html=html).nodelist)
    assert parts is not None, source
    plain = _plain_render(parts, data, html=html)
    if plain is not None:  # None: a value it leaves to Django (missing, bool, float, None, list, dict)
        assert plain == django_render(source, data, html), (source, data)
    assert render_value(source, data, html=html) == django_render(source, data, html)


@pytest.mark.parametrize("html", [False, True])
def test_text_and_numbers_and_nested_keys_take_the_plain_path(html):
    source = "Hello {{ name }} <b>#{{ order }}</b> {{ a.b }}"
    data = {"name": "Ada & <Bob> \"O'Neil\"", "order": 1234567, "a": {"b": "x"}}
    parts = _plain_parts(compiled_template(source, html=html).nodelist)
    assert _plain_render(parts, data, html=html) == django_render(source, data, html)
    expected_name = "Ada &amp; &lt;Bob&gt; &quot;O&#x27;Neil&quot;" if html else data["name"]
    assert render_value(source, data, html=html) == f"Hello {expected_name} <b>#1234567</b> x"


@pytest.mark.parametrize("source", ["{{ name|upper }}", "{% if name %}x{% endif %}", '{{ "literal" }}',
                                    "{% for x in a %}{{ x }}{% endfor %}", "{{ _(\"Hello\") }}"])
def test_a_template_with_filters_tags_or_literals_is_left_to_django(source):
    assert _plain_parts(compiled_template(source).nodelist) is None


def test_thousand_separators_turn_the_plain_path_off(settings):
    settings.USE_THOUSAND_SEPARATOR = True
    assert render_value("{{ order }}", {"order": 1234567}) == django_render("{{ order }}", {"order": 1234567}, False)
    assert render_value("{{ order }}", {"order": 1234567}) == "1,234,567"
