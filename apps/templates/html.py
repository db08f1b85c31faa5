"""Django's HTML filters that parse HTML in Python (truncate*_html, striptags), on the render's deadline.

Django's truncation parsers grow their output with `self.output += text`, one copy of everything
so far per tag: quadratic, 10 to 24 s of CPU for 900 KB of tags. Here the same parsers write into
an `_Output` that appends, and that looks at the clock on each piece. Django's strip_tags parses
the whole value up to 50 times over (once per level of tags inside tags: 4 s for 900 KB); here
the clock is checked after each pass (one pass over 1 MiB takes under a second). Either way a
render stops at its deadline, or one pass after it, even inside one filter.
"""

import unicodedata

from django.core.exceptions import SuspiciousOperation
from django.utils.html import MAX_STRIP_TAGS_DEPTH, _strip_once, long_open_tag_without_closing_re
from django.utils.text import TruncateCharsHTMLParser, TruncateWordsHTMLParser

from apps.templates.budget import Budget


class _Output:
    """What Django's parsers use of their `output` str (`+=`, len), appending instead of copying."""

    def __init__(self, budget: Budget):
        self._parts: list[str] = []
        self._length = 0
        self._budget = budget

    def __iadd__(self, text: str) -> "_Output":
        self._parts.append(text)
        self._length += len(text)
        self._budget.check_time()
        return self

    def __len__(self) -> int:
        return self._length

    def __str__(self) -> str:
        return "".join(self._parts)


class _CharsParser(TruncateCharsHTMLParser):
    def __init__(self, *, budget: Budget, **kwargs):
        super().__init__(**kwargs)
        self.output = _Output(budget)


class _WordsParser(TruncateWordsHTMLParser):
    def __init__(self, *, budget: Budget, **kwargs):
        super().__init__(**kwargs)
        self.output = _Output(budget)


def truncate_html(value: str, arg, *, words: bool, budget: Budget) -> str:
    """What Truncator(value).chars(arg, html=True) or .words(arg, html=True, truncate=" …") return."""
    try:
        length = int(arg)
    except ValueError:
        return value  # as Django's filters: an argument that is not a number leaves the value as it is
    if length <= 0:
        return ""
    if words:
        parser = _WordsParser(length=length, replacement=" …", budget=budget)
    else:
        parser = _CharsParser(length=length, replacement=None, budget=budget)
        value = unicodedata.normalize("NFC", value)
    parser.feed(value)
    parser.close()
    return str(parser.output)


def strip_tags(value: str, *, budget: Budget) -> str:
    """django.utils.html.strip_tags (same passes, same refusals), with the clock checked between passes."""
    for long_open_tag in long_open_tag_without_closing_re.finditer(value):
        if long_open_tag.group().count("<") >= MAX_STRIP_TAGS_DEPTH:
            raise SuspiciousOperation
    for _ in range(MAX_STRIP_TAGS_DEPTH):
        if "<" not in value or ">" not in value:
            return value
        stripped = _strip_once(value)
        if stripped.count("<") == value.count("<"):
            return value  # nothing more the parser sees as a tag
        value = stripped
        budget.check_time()
    if "<" in value and ">" in value:
        raise SuspiciousOperation
    return value
