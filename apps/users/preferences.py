"""A user's preferences, applied when a notification is created: which channels they take, for
which categories, and when they are not to be disturbed.

Channels and categories: the most specific setting wins. `categories[category][channel]` if the
user set it, else `channels[channel]`, else yes. So a user can turn SMS off in general and still
take security codes by SMS (`{"channels": {"sms": false}, "categories": {"security": {"sms": true}}}`).
Neither applies to the project's critical categories (apps/projects/policy.py), which users cannot
opt out of, with one exception: an unsubscribe through an email's link (an Unsubscribe record) holds
even if the project marks that category critical afterwards. The page that took it promised "you
will no longer receive these emails", and an operator's later marking must not break that promise
(a critical category's emails carry no link, so no new unsubscribe can come that way). Quiet hours
still hold critical categories (they delay, they do not decline: urgency is `high`'s job).

Quiet hours hold a delivery `pending` until they end, read in the user's time zone (UTC when they
have none). They hold the channels that interrupt someone (each channel's backend says whether it
does: ChannelBackend.held_by_quiet_hours); and not `high` priority notifications, which are what
the user is waiting for (a login code held until morning is useless).
"""

import zoneinfo
from datetime import UTC, datetime, time, timedelta

from apps.users.models import Recipient, Unsubscribe

QUIET_HOURS_EXEMPT_PRIORITIES = frozenset({"high"})


def channel_declined_reason(*, recipient: Recipient, channel: str, category: str, critical: bool = False) -> str:
    """Why the user's preferences refuse this channel for this category, or "" if they take it.

    A `critical` category (one the project lists in critical_categories: security codes, billing)
    is not the user's to decline: their settings are kept, shown, and do not apply to it, except
    an unsubscribe through an email's link, which still has the channel off.
    """
    by_category = recipient.category_preferences.get(category, {}) if category else {}
    if critical:
        # One query, only for a critical category the user has switched off: a rare pair.
        if by_category.get(channel, True) is False and Unsubscribe.objects.filter(
            recipient=recipient, category=category, channel=channel
        ).exists():
            return f"the user turned {channel} off for {category!r} through an email's unsubscribe link"
        return ""
    if channel in by_category:
        return "" if by_category[channel] else f"the user turned {channel} off for {category!r}"
    if recipient.channel_preferences.get(channel, True):
        return ""
    return f"the user turned {channel} off"


def quiet_hours_release_at(*, recipient: Recipient, priority: str, moment: datetime) -> datetime | None:
    """When the user's quiet hours let a delivery due at `moment` go, or None if they do not hold it
    (for a channel quiet hours hold: the caller asks the channel)."""
    start, end = recipient.quiet_hours_start, recipient.quiet_hours_end
    if start is None or end is None or priority in QUIET_HOURS_EXEMPT_PRIORITIES:
        return None
    zone = recipient_zone(recipient)
    try:
        local = moment.astimezone(zone)
        if not _within(local.time(), start, end):
            return None
        release = datetime.combine(local.date(), end, tzinfo=zone)
        if release <= local:  # the window runs past midnight: it ends tomorrow
            release = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=zone)
        return release.astimezone(UTC)
    except OverflowError:
        # At the ends of the calendar (the API bounds send_at; this keeps any other caller from a
        # crash) there is no next morning to wait for: the delivery is not held.
        return None


def recipient_zone(recipient: Recipient) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(recipient.timezone or "UTC")


def _within(moment: time, start: time, end: time) -> bool:
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end  # e.g. 22:00-07:00
