"""Every Django builtin filter and tag was looked at and decided: kept, bounded, replaced or refused.

A Django upgrade that adds a builtin fails here until someone decides about it.
"""

import pytest
from django.template import defaultfilters, defaulttags

from apps.templates import library

# Output no larger than a few times the input (escape: 6x, urlize: 5x, linebreaksbr: 4x), or no
# larger than an argument; their results are accounted after they are built.
KEPT_FILTERS = {
    "addslashes", "capfirst", "cut", "date", "default", "default_if_none", "dictsort", "dictsortreversed",
    "divisibleby", "escape", "escapejs", "escapeseq", "filesizeformat", "first", "force_escape", "get_digit",
    "iriencode", "json_script", "last", "length", "linebreaks", "linebreaksbr", "lower", "make_list",
    "phone2numeric", "pluralize", "random", "safe", "safeseq", "slice", "slugify", "time", "timesince",
    "timeuntil", "title", "truncatechars", "truncatewords", "upper", "urlencode", "urlize", "urlizetrunc",
    "wordcount", "wordwrap", "yesno",
}
# Their result can outgrow their input without bound: its size is estimated and refused before it is built.
ESTIMATED_FILTERS = {"add", "join", "linenumbers", "unordered_list"}
# Our own versions: floatformat's places capped; truncate*_html linear; striptags and
# truncate*_html stop at the deadline.
REPLACED_FILTERS = {"floatformat", "truncatechars_html", "truncatewords_html", "striptags"}
REFUSED_FILTERS = {"ljust", "rjust", "center", "stringformat", "pprint"}

# Tags write what their nodes render (counted as it is produced) and build nothing else beyond
# their data (regroup: groups of the data's items; widthratio: a float).
KEPT_TAGS = {
    "autoescape", "comment", "cycle", "filter", "firstof", "for", "if", "ifchanged", "regroup", "resetcycle",
    "spaceless", "templatetag", "verbatim", "widthratio", "with",
}
REPLACED_TAGS = {"now"}  # its format is at most 100 characters
REFUSED_TAGS = {"lorem", "debug", "url", "csrf_token", "querystring", "load"}


def test_every_builtin_filter_is_decided():
    decided = KEPT_FILTERS | ESTIMATED_FILTERS | REPLACED_FILTERS | REFUSED_FILTERS
    assert set(defaultfilters.register.filters) == decided
    assert set(library.register.filters) == decided - REFUSED_FILTERS


def test_every_builtin_tag_is_decided():
    assert set(defaulttags.register.tags) == KEPT_TAGS | REPLACED_TAGS | REFUSED_TAGS
    assert set(library.register.tags) == KEPT_TAGS | REPLACED_TAGS


def test_every_filter_allowed_is_metered():
    metered = library._metered("any", str).__code__  # every metered filter runs this code, over its own filter
    assert [name for name, function in library.register.filters.items() if function.__code__ is not metered] == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "source",
    [
        "{{ data|pprint }}",
        "{% now '" + "r" * 101 + "' %}",
    ],
)
def test_a_refused_filter_or_tag_is_a_422_when_saved(api, source):
    response = api.put("/api/v1/templates/welcome", {"channels": {"sms": {"text": source}}}, format="json")

    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "invalid_template"
    assert list(response.json()["error"]["details"]) == ["channels.sms.text"]


@pytest.mark.django_db
def test_now_with_a_short_format_still_renders(api):
    api.put("/api/v1/templates/welcome", {"channels": {"sms": {"text": "{% now 'Y' as year %}{{ year|length }}"}}},
            format="json")

    body = api.post("/api/v1/templates/welcome/preview", {"data": {}}, format="json").json()

    assert body["channels"]["sms"]["text"] == "4"
