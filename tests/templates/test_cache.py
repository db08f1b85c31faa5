"""The compiled-template cache is bounded in bytes, not in entries."""

import pytest

from apps.templates.rendering import compiled_cache, render_value
from tests.support.memory import rss_bytes

MB = 1024 * 1024


@pytest.fixture
def cache():
    compiled_cache.clear()
    yield compiled_cache
    compiled_cache.clear()


def many_tag_part(n: int) -> str:
    # 1,000 nodes from 20 KB of source: about 1.2 MB once compiled (measured with tracemalloc),
    # estimated at 2 MB.
    return f"{{# {n} #}}" + "{% if a %}{{ b|lower|upper }}{% endif %}" * 500


@pytest.mark.slow
def test_distinct_parts_stay_within_the_byte_bound(cache, settings):
    settings.NOTIFIER_TEMPLATE_CACHE_MAX_BYTES = 12 * MB
    before = rss_bytes()

    for n in range(60):  # with 2,048 entries allowed, as before, these would all be kept: ~75 MB
        render_value({"text": many_tag_part(n)}, {"a": False})

    assert cache.size <= 12 * MB
    assert 3 <= len(cache._entries) <= 6
    assert rss_bytes() - before < 40 * MB


def test_the_most_recently_used_part_stays(cache, settings):
    settings.NOTIFIER_TEMPLATE_CACHE_MAX_BYTES = 12 * MB
    render_value({"text": many_tag_part(0)}, {})
    first = cache.get(many_tag_part(0), False)

    for n in range(1, 15):
        render_value({"text": many_tag_part(n)}, {})
        assert cache.get(many_tag_part(0), False) is first  # used again each time: never the oldest


def test_a_part_larger_than_a_quarter_of_the_bound_is_compiled_each_time(cache, settings):
    settings.NOTIFIER_TEMPLATE_CACHE_MAX_BYTES = 4 * MB

    assert render_value({"text": many_tag_part(0) * 3 + "{{ x }}"}, {"x": "ok"})["text"].endswith("ok")
    assert cache.size == 0
