"""What a workflow version may say, checked before anything is stored.

Every refusal names the field it is about (`steps[2].wait`, `digest.window`), so the error
envelope points at the line to fix.
"""

import re

from apps.channels.registry import channel_names
from apps.core.exceptions import ApplicationError
from apps.projects.policy import window_seconds_parse

MAX_STEPS = 20
MAX_WAIT_SECONDS = 30 * 86400
MAX_DIGEST_WINDOW_SECONDS = 7 * 86400
MAX_DIGEST_EVENTS = 10_000
CONDITION_UNREAD = "unread"
CONDITION_NOT_DELIVERED = "not_delivered"
CONDITIONS = (CONDITION_UNREAD, CONDITION_NOT_DELIVERED)
IN_APP = "in_app"
_AT = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def definition_clean(*, steps, digest, template_channels: set[str]) -> tuple[list[dict], dict | None]:
    """The steps and digest in their stored form (durations in seconds); raises a 422 naming
    every field that is wrong."""
    errors: dict[str, str] = {}
    clean_steps = _steps_clean(steps, template_channels=template_channels, errors=errors)
    clean_digest = _digest_clean(digest, errors=errors) if digest is not None else None
    if errors:
        raise ApplicationError("invalid_workflow", "The workflow has invalid fields.", details=errors)
    return clean_steps, clean_digest


def _steps_clean(steps, *, template_channels: set[str], errors: dict) -> list[dict]:
    if not isinstance(steps, list) or not steps:
        errors["steps"] = "Give a list of at least one step."
        return []
    if len(steps) > MAX_STEPS:
        errors["steps"] = f"At most {MAX_STEPS} steps."
        return []
    enabled = set(channel_names())
    clean, seen = [], set()
    for index, step in enumerate(steps):
        where = f"steps[{index}]"
        if not isinstance(step, dict) or ("channel" in step) == ("wait" in step):
            errors[where] = 'A step is {"channel": ..., "if"?: ...} or {"wait": seconds | "10m"}.'
            continue
        if "wait" in step:
            if set(step) != {"wait"}:
                errors[where] = "A wait step has no other field."
                continue
            seconds = _duration(step["wait"], maximum=MAX_WAIT_SECONDS, field=f"{where}.wait", errors=errors)
            clean.append({"wait": seconds})
            continue
        if unknown := sorted(set(step) - {"channel", "if"}):
            errors[where] = f"Unknown field {unknown[0]!r}."
            continue
        channel, condition = step["channel"], step.get("if")
        if not isinstance(channel, str) or channel not in enabled:
            errors[f"{where}.channel"] = f"Unknown channel; one of {sorted(enabled)}."
        elif channel not in template_channels:
            errors[f"{where}.channel"] = "The template has no part for this channel."
        elif channel in seen:
            errors[f"{where}.channel"] = "A channel may appear in one step only (a notification has one delivery per channel)."
        if condition is not None and condition not in CONDITIONS:
            errors[f"{where}.if"] = f"One of {list(CONDITIONS)}."
        elif condition == CONDITION_UNREAD and IN_APP not in seen:
            errors[f"{where}.if"] = '"unread" needs an in_app step before it.'
        elif condition == CONDITION_NOT_DELIVERED and not seen:
            errors[f"{where}.if"] = '"not_delivered" needs a channel step before it.'
        seen.add(channel)
        clean.append({"channel": channel, **({"if": condition} if condition else {})})
    return clean


def _digest_clean(digest, *, errors: dict) -> dict | None:
    if not isinstance(digest, dict):
        errors["digest"] = 'Give {"window": seconds | "10m", "key"?, "max"?} or {"schedule": {"at": "09:00"}, ...}.'
        return None
    if unknown := sorted(set(digest) - {"window", "schedule", "key", "max"}):
        errors["digest"] = f"Unknown field {unknown[0]!r}."
        return None
    clean: dict = {}
    if ("window" in digest) == ("schedule" in digest):
        errors["digest.window"] = 'Give either "window" or "schedule".'
    elif "window" in digest:
        clean["window"] = _duration(digest["window"], maximum=MAX_DIGEST_WINDOW_SECONDS, field="digest.window",
                                    errors=errors)
    else:
        schedule = digest["schedule"]
        at = schedule.get("at") if isinstance(schedule, dict) and set(schedule) == {"at"} else None
        if not isinstance(at, str) or not _AT.match(at):
            errors["digest.schedule"] = 'Give {"at": "HH:MM"}: daily at that time in the user\'s timezone.'
        else:
            clean["schedule"] = {"at": at}
    if "key" in digest:
        if not isinstance(digest["key"], str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,99}", digest["key"]):
            errors["digest.key"] = "The name of a top-level field of the notifications' data."
        else:
            clean["key"] = digest["key"]
    if "max" in digest:
        if isinstance(digest["max"], bool) or not isinstance(digest["max"], int) or not 1 <= digest["max"] <= MAX_DIGEST_EVENTS:
            errors["digest.max"] = f"A number of events from 1 to {MAX_DIGEST_EVENTS}."
        else:
            clean["max"] = digest["max"]
    return clean


def _duration(value, *, maximum: int, field: str, errors: dict) -> int:
    try:
        seconds = window_seconds_parse(value)
    except ValueError:
        errors[field] = f'Give seconds or a duration such as "10m", from 1 second to {maximum // 86400} days.'
        return 0
    if seconds > maximum:
        errors[field] = f"At most {maximum // 86400} days."
    return seconds


def workflow_channels(steps: list[dict]) -> list[str]:
    return [step["channel"] for step in steps if "channel" in step]
