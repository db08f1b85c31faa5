"""A project's delivery policy: the categories its users cannot opt out of, and its frequency caps.

Both are stored on the project as JSON (what the API's GET shows back); this module gives them a
shape the sending side can rely on. The notifications app applies them (apps/notifications/intake/caps.py),
the users' preferences skip critical categories (apps/users/preferences.py).
"""

import re
from dataclasses import dataclass

from apps.projects.models import Project

# Any category: a cap on everything a user gets from the project.
ALL_CATEGORIES = "*"
OVER_CAP_DEFER = "defer"
OVER_CAP_SKIP = "skip"
OVER_CAP_CHOICES = (OVER_CAP_DEFER, OVER_CAP_SKIP)

MAX_CAPS = 20
MAX_CRITICAL_CATEGORIES = 50
# A cap's check reads and scans up to a few limits' worth of a user's counted notifications under
# the user's row lock (apps/notifications/intake/caps.py): the limit bounds that work. A thousand per
# window is far above any cap meant to spare a user (a few a day); 10,000 let one key make each
# item of its bulks cost milliseconds.
MAX_CAP_LIMIT = 1_000
# A window longer than a month would keep a user's counting rows hot for no realistic cap; it is
# also the longest a deferred notification can wait.
MAX_WINDOW_SECONDS = 31 * 24 * 3600

# Category names are stored in jsonb, which refuses U+0000 and unpaired surrogates.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

_WINDOW_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WINDOW = re.compile(r"^\s*(\d{1,7})\s*([smhd])\s*$")


@dataclass(frozen=True)
class FrequencyCap:
    category: str  # a category name, or ALL_CATEGORIES
    limit: int
    window_seconds: int
    over_cap: str  # OVER_CAP_DEFER or OVER_CAP_SKIP

    def applies_to(self, category: str) -> bool:
        return self.category == ALL_CATEGORIES or self.category == category

    def describe(self) -> str:
        which = "notifications" if self.category == ALL_CATEGORIES else f"{self.category!r} notifications"
        return f"at most {self.limit} {which} per {self.window_seconds} s"


def window_seconds_parse(value) -> int:
    """Seconds from an integer of seconds or a string such as "90s", "15m", "1h", "1d".
    Raises ValueError naming what is wrong."""
    if isinstance(value, bool):
        raise ValueError("Give seconds (an integer) or a duration such as \"15m\", \"1h\", \"1d\".")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and (match := _WINDOW.match(value)):
        seconds = int(match.group(1)) * _WINDOW_UNITS[match.group(2)]
    elif isinstance(value, str) and value.strip().isdigit():
        seconds = int(value)
    else:
        raise ValueError("Give seconds (an integer) or a duration such as \"15m\", \"1h\", \"1d\".")
    if not 1 <= seconds <= MAX_WINDOW_SECONDS:
        raise ValueError(f"The window must be between 1 second and {MAX_WINDOW_SECONDS // 86400} days.")
    return seconds


def frequency_caps_of(project: Project) -> list[FrequencyCap]:
    """The project's caps, as stored (validated by the API and the admin on the way in); a limit
    or window stored before today's bounds is read within them."""
    return [
        FrequencyCap(category=cap["category"], limit=min(int(cap["limit"]), MAX_CAP_LIMIT),
                     window_seconds=min(int(cap["window"]), MAX_WINDOW_SECONDS),
                     over_cap=cap.get("over_cap", OVER_CAP_DEFER))
        for cap in project.frequency_caps or []
    ]


def frequency_caps_clean(value) -> list[dict]:
    """Validate caps as given to the API or the admin; return them stored-shaped (window in
    seconds). Raises ValueError with {index: {field: message}} as its argument."""
    if not isinstance(value, list):
        raise ValueError({"non_field_errors": "Give a list of caps."})
    if len(value) > MAX_CAPS:
        raise ValueError({"non_field_errors": f"At most {MAX_CAPS} caps."})
    errors: dict = {}
    cleaned = []
    seen = set()
    for index, cap in enumerate(value):
        if not isinstance(cap, dict):
            errors[str(index)] = {"non_field_errors": "Give an object {category, limit, window, over_cap?}."}
            continue
        problems = {}
        unknown = sorted(set(cap) - {"category", "limit", "window", "over_cap"})
        for name in unknown:
            problems[name] = "Unknown field."
        category = cap.get("category")
        if not _category_name_valid(category):
            problems["category"] = 'A category name (at most 100 characters), or "*" for all categories.'
        elif category in seen:
            problems["category"] = "Another cap already has this category."
        limit = cap.get("limit")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CAP_LIMIT:
            problems["limit"] = f"An integer from 1 to {MAX_CAP_LIMIT}."
        try:
            window = window_seconds_parse(cap.get("window"))
        except ValueError as exc:
            problems["window"] = str(exc)
        over_cap = cap.get("over_cap", OVER_CAP_DEFER)
        if over_cap not in OVER_CAP_CHOICES:
            problems["over_cap"] = f"One of {', '.join(OVER_CAP_CHOICES)}."
        if problems:
            errors[str(index)] = problems
            continue
        seen.add(category)
        cleaned.append({"category": category, "limit": limit, "window": window, "over_cap": over_cap})
    if errors:
        raise ValueError(errors)
    return cleaned


def critical_categories_clean(value) -> list[str]:
    """Validate a list of critical categories; return it without repeats. Raises ValueError."""
    if not isinstance(value, list) or not all(_category_name_valid(c) for c in value):
        raise ValueError("Give a list of category names (each 1 to 100 characters, no NUL).")
    if len(value) > MAX_CRITICAL_CATEGORIES:
        raise ValueError(f"At most {MAX_CRITICAL_CATEGORIES} categories.")
    return list(dict.fromkeys(value))


def _category_name_valid(name) -> bool:
    return isinstance(name, str) and 0 < len(name) <= 100 and not _UNSTORABLE.search(name)
