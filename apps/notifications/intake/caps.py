"""Frequency caps: at most N notifications per user per category (or all) in a sliding window.

Applied when a notification is accepted, inside the transaction that inserts it, so the create
response already says what the cap did (`hold_reason` or `skip_reason`). A notification counts at
the time it is due (its `send_at`, or now) or at the later time a cap deferred it to; that time
is `Notification.cap_counted_at`, and the count is a query on it (index notification_cap_count).

Two requests for one user in different web processes must not both take the last slot: the
users' rows are locked (SELECT … FOR UPDATE, in id order so two batches cannot deadlock) before
counting, so the second waits for the first to commit and then counts it.

The work under that lock is bounded whatever a user's history: a deferral waits at most twice the
project's longest window past the notification's due time (DEFER_HORIZON_WINDOWS; past it, the
notification is skipped: a user that far over a cap gains nothing from a longer queue), so only
the counted notifications within a window of that span are read, one query per cap; every cap's
windows hold at most its limit (bounded by MAX_CAP_LIMIT), so that is a few limits' worth of rows
per user. Each check
is two binary searches and a scan of at most one limit's worth of times (see _Counted).

Exempt, and never counted: `priority: high`, the project's critical categories, notifications with
nothing to send (every delivery skipped). A cancelled notification stops counting. Notifications
accepted while the project had no caps do not count (they carry no cap_counted_at): a cap holds
from when it is set.
"""

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from apps.channels.registry import channel_held_by_quiet_hours
from apps.notifications.models import Delivery, DeliveryStatus, Notification, Priority
from apps.projects.models import Project
from apps.projects.policy import ALL_CATEGORIES, OVER_CAP_SKIP, FrequencyCap, frequency_caps_of
from apps.projects.selectors import category_is_critical
from apps.users.models import Recipient
from apps.users.preferences import quiet_hours_release_at

FREQUENCY_CAP_SKIP_PREFIX = "frequency cap"
FREQUENCY_CAP_HOLD_PREFIX = "held by the frequency cap"
# How far a deferral may reach, in the project's longest window: one window is not enough, since
# scheduled notifications up to a window ahead can fill the window after the due time too.
DEFER_HORIZON_WINDOWS = 2
# How many times one notification's slot search may move past a full stretch before it gives up
# (and is skipped): each move passes at least one whole full run, so realistic histories need one
# or two; the bound keeps a contrived one from costing more.
MAX_SLOT_MOVES = 32


@dataclass
class CapPlan:
    """A notification about to be inserted, as the caps see it."""

    notification: Notification
    due: datetime
    uncapped: list[Delivery]  # its deliveries as planned without caps; never changed here
    deliveries: list[Delivery]  # what is inserted: `uncapped`, or their held/skipped versions


@dataclass
class _Counted:
    """One user's counted times under one cap, sorted.

    One more notification at `at` breaks the cap exactly when some `limit` consecutive counted
    times span less than a window and lie within a window either side of `at` (a window holding
    them and `at` then exists). Such a run blocks every moment until its first time leaves the
    window, so the search for a slot jumps there.
    """

    cap: FrequencyCap
    times: list[datetime] = field(default_factory=list)

    def blocked_until(self, at: datetime) -> datetime | None:
        """None when one more at `at` fits; else the moment until which the latest run blocks."""
        window, limit, times = timedelta(seconds=self.cap.window_seconds), self.cap.limit, self.times
        low, high = bisect_right(times, at - window), bisect_left(times, at + window)
        for first in range(high - limit, low - 1, -1):  # latest first: it blocks the longest
            if times[first + limit - 1] - times[first] < window:
                return times[first] + window
        return None


def cap_exempt(*, project: Project, priority: str, category: str) -> bool:
    return priority == Priority.HIGH or category_is_critical(project=project, category=category)


def caps_apply(*, project: Project, plans: Iterable[CapPlan], now: datetime) -> None:
    """Decide each plan's fate under the project's caps, in order, and set its `deliveries` and
    its notification's `cap_counted_at`. Must run inside the inserting transaction."""
    plans = list(plans)
    for plan in plans:
        plan.deliveries = list(plan.uncapped)
        plan.notification.cap_counted_at = None
    caps = frequency_caps_of(project)
    if not caps:
        return
    subject = [
        (plan, applicable) for plan in plans
        if any(d.status != DeliveryStatus.SKIPPED for d in plan.uncapped)
        and not cap_exempt(project=project, priority=plan.notification.priority, category=plan.notification.category)
        and (applicable := [cap for cap in caps if cap.applies_to(plan.notification.category)])
    ]
    if not subject:
        return
    recipient_ids = sorted({plan.notification.recipient_id for plan, _ in subject})
    list(Recipient.objects.select_for_update().filter(id__in=recipient_ids).order_by("id").values_list("id"))
    horizon = DEFER_HORIZON_WINDOWS * timedelta(seconds=max(cap.window_seconds for cap in caps))
    counted = _counted_load(recipient_ids=recipient_ids, caps={cap for _, applicable in subject for cap in applicable},
                            earliest=min(plan.due for plan, _ in subject),
                            latest=max(plan.due for plan, _ in subject) + horizon)

    for plan, applicable in subject:
        notification = plan.notification
        mine = [counted[(notification.recipient_id, cap)] for cap in applicable]
        over = [c.cap for c in mine if c.blocked_until(plan.due) is not None]
        if not over:
            slot = plan.due
        elif skipping := [cap for cap in over if cap.over_cap == OVER_CAP_SKIP]:
            plan.deliveries = [_skipped(d, cap=skipping[0], now=now) for d in plan.uncapped]
            continue
        elif (slot := _first_slot(mine, plan.due, until=plan.due + horizon)) is None:
            plan.deliveries = [_skipped(d, cap=over[0], now=now, beyond=horizon) for d in plan.uncapped]
            continue
        else:
            plan.deliveries = [_held(d, cap=over[0], until=slot, now=now, recipient=notification.recipient)
                               for d in plan.uncapped]
        notification.cap_counted_at = slot
        for c in mine:
            insort(c.times, slot)


def _counted_load(*, recipient_ids: list[int], caps: set[FrequencyCap], earliest: datetime,
                  latest: datetime) -> dict[tuple[int, FrequencyCap], _Counted]:
    """The counted times each check may look at: a window either side of the span from the
    earliest due time to the latest moment a deferral may reach. One query per cap."""
    counted = {(recipient_id, cap): _Counted(cap) for recipient_id in recipient_ids for cap in caps}
    for cap in caps:
        window = timedelta(seconds=cap.window_seconds)
        rows = Notification.objects.filter(recipient_id__in=recipient_ids, cap_counted_at__gt=earliest - window,
                                           cap_counted_at__lt=latest + window)
        if cap.category != ALL_CATEGORIES:
            rows = rows.filter(category=cap.category)
        for recipient_id, at in rows.values_list("recipient_id", "cap_counted_at"):
            counted[(recipient_id, cap)].times.append(at)
    for each in counted.values():
        each.times.sort()
    return counted


def _first_slot(counted: list[_Counted], due: datetime, *, until: datetime) -> datetime | None:
    """The earliest moment from `due` at which every cap has room, or None if there is none by
    `until`. Each blocked moment jumps to the latest end among its blockers: every moment before
    it is blocked too."""
    at = due
    for _ in range(MAX_SLOT_MOVES):
        ends = [end for c in counted if (end := c.blocked_until(at)) is not None]
        if not ends:
            return at
        at = max(ends)
        if at > until:
            return None
    return None


def _skipped(delivery: Delivery, *, cap: FrequencyCap, now: datetime, beyond: timedelta | None = None) -> Delivery:
    if delivery.status == DeliveryStatus.SKIPPED:
        return delivery
    reason = f"{FREQUENCY_CAP_SKIP_PREFIX}: {cap.describe()}"
    if beyond is not None:
        reason += f", and no room within {int(beyond.total_seconds())} s of its time"
    reason = reason[:Delivery._meta.get_field("skip_reason").max_length]  # a category name may be long
    return Delivery(notification=delivery.notification, channel=delivery.channel, status=DeliveryStatus.SKIPPED,
                    skip_reason=reason, status_changed_at=now)


def _held(delivery: Delivery, *, cap: FrequencyCap, until: datetime, now: datetime, recipient) -> Delivery:
    if delivery.status == DeliveryStatus.SKIPPED:
        return delivery
    reason = f"{FREQUENCY_CAP_HOLD_PREFIX} ({cap.describe()})"
    quiet_until = None
    if channel_held_by_quiet_hours(delivery.channel):
        quiet_until = quiet_hours_release_at(recipient=recipient, priority=delivery.notification.priority,
                                             moment=until)
    if quiet_until is not None:
        until, reason = quiet_until, f"{reason}, then by the user's quiet hours"
    return Delivery(notification=delivery.notification, channel=delivery.channel, status=DeliveryStatus.PENDING,
                    status_changed_at=now, next_attempt_at=until, recheck_at=until, hold_reason=reason)
