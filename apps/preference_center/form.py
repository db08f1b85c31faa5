"""The preference page's form: what it shows from a user's preferences, and the preferences a
submitted form means.

One checkbox a channel (`channel:<channel>`) and one a category and channel
(`category:<category>:<channel>`), each showing what applies today (apps/users/preferences.py:
the category's own switch if set, else the channel's). Critical categories are shown on and
disabled: preferences do not apply to them, so nothing is read back for them.

A category's checkbox the user left as it was keeps what was stored (a switch of its own, or
none, following its channel), so that turning a channel off in the same form turns it off for
every category without a switch of its own. Only a checkbox the user changed becomes a switch.
"""

from dataclasses import dataclass
from datetime import datetime, time

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

CHANNEL_LABELS = {
    "email": gettext_lazy("Email"),
    "sms": gettext_lazy("Text messages (SMS)"),
    "push": gettext_lazy("Push notifications"),
    "in_app": gettext_lazy("In-app messages"),
    "webhook": gettext_lazy("Webhook"),
}


@dataclass(frozen=True)
class Switch:
    name: str  # the checkbox's field name
    channel: str
    label: str
    checked: bool


@dataclass(frozen=True)
class CategoryRow:
    category: str
    critical: bool
    switches: list[Switch]


@dataclass(frozen=True)
class PreferenceForm:
    channels: list[Switch]
    categories: list[CategoryRow]
    quiet_hours_start: str  # "HH:MM" or ""
    quiet_hours_end: str


class PreferenceFormError(Exception):
    """What the user must correct; the form is shown again with it."""


def preference_form(*, preferences: dict, categories: list[str]) -> PreferenceForm:
    """The form showing `preferences` (the shape of GET /preferences) for these categories."""
    channel_on = _channel_switches(preferences["channels"])
    rows = []
    for category in categories:
        critical = category in preferences["critical_categories"]
        own = preferences["categories"].get(category, {})
        rows.append(CategoryRow(category=category, critical=critical, switches=[
            Switch(name=f"category:{category}:{channel}", channel=channel, label=str(CHANNEL_LABELS.get(channel, channel)),
                   checked=critical or own.get(channel, channel_on[channel]))
            for channel in settings.NOTIFICATION_CHANNELS
        ]))
    quiet_hours = preferences["quiet_hours"] or {}
    return PreferenceForm(
        channels=[Switch(name=f"channel:{channel}", channel=channel, label=str(CHANNEL_LABELS.get(channel, channel)),
                         checked=on) for channel, on in channel_on.items()],
        categories=rows,
        quiet_hours_start=_hhmm(quiet_hours.get("start")),
        quiet_hours_end=_hhmm(quiet_hours.get("end")),
    )


def preferences_from_form(*, preferences: dict, categories: list[str], posted) -> dict:
    """The preferences a submitted form means, in the arguments of recipient_preferences_set.

    `preferences` are the stored ones the form was made from; `posted` the form's fields (a
    QueryDict: an unchecked box is absent). Raises PreferenceFormError for bad quiet hours.
    """
    was_on = _channel_switches(preferences["channels"])
    channels = {channel: f"channel:{channel}" in posted for channel in settings.NOTIFICATION_CHANNELS}
    switches = {category: dict(own) for category, own in preferences["categories"].items()}
    for category in categories:
        if category in preferences["critical_categories"]:
            continue
        own = switches.setdefault(category, {})
        for channel in settings.NOTIFICATION_CHANNELS:
            shown = own.get(channel, was_on[channel])
            checked = f"category:{category}:{channel}" in posted
            if checked != shown:
                own[channel] = checked
    return {
        "channels": channels,
        "categories": {category: own for category, own in switches.items() if own},
        "quiet_hours": _quiet_hours(posted.get("quiet_hours_start", ""), posted.get("quiet_hours_end", "")),
    }


def _channel_switches(stored: dict) -> dict[str, bool]:
    return {channel: bool(stored.get(channel, True)) for channel in settings.NOTIFICATION_CHANNELS}


def _quiet_hours(start: str, end: str) -> dict | None:
    start, end = start.strip(), end.strip()
    if not start and not end:
        return None
    if not start or not end:
        raise PreferenceFormError(_("Give both the start and the end of your quiet hours, or neither."))
    try:
        start_time, end_time = _parse_time(start), _parse_time(end)
    except ValueError:
        raise PreferenceFormError(_("Write times as HH:MM, for example 22:00.")) from None
    if start_time == end_time:
        raise PreferenceFormError(_("Quiet hours must start and end at different times."))
    return {"start": start_time, "end": end_time}


def _parse_time(value: str) -> time:
    # A browser's <input type="time"> sends HH:MM, or HH:MM:SS when seconds are shown.
    for layout in ("%H:%M", "%H:%M:%S"):
        try:
            return datetime.strptime(value, layout).time().replace(second=0)
        except ValueError:
            continue
    raise ValueError(value)


def _hhmm(value) -> str:
    return value.strftime("%H:%M") if value else ""
