"""Frequency caps: at most N notifications per user per category (or all) in a sliding window.

Applied when a notification is accepted, inside the transaction that inserts it, so the create
response already says what the cap did (`hold_reason` or `skip_reason`). A notification counts at
the time it is due (its `send_at`, or now) or at the later time a cap deferred it to; that time
is `Notification.cap_counted_at`, and the count is a query on it (index notification_cap_count).

Two requests for one user in different web processes must not both take the last slot: the
users' rows are locked (SELECT … FOR UPDATE, in id order so two batches cannot deadlock) before
counting, so the second waits for the first to commit and then counts it.

Exempt, and never counted: `priority: high`, the project's critical categories, notifications with
nothing to send (every delivery skipped). A cancelled notification stops counting. Notifications
accepted while the project had no caps do not count (they carry no cap_counted_at): a cap holds
from when it is set.
"""

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from apps.channels.registry import channel_held_by_quiet_hours
from apps.notifications.models import Delivery, DeliveryStatus, Notification, Priority
from apps.projects.models import Project
from apps.projects.policy import OVER_CAP_SKIP, FrequencyCap, frequency_caps_of
from apps.projects.selectors import category_is_critical
from apps.users.models import Recipient
from apps.users.preferences import quiet_hours_release_at

FREQUENCY_CAP_SKIP_PREFIX = "frequency cap"
FREQUENCY_CAP_HOLD_PREFIX = "held by the frequency cap"


@dataclass
class CapPlan:
    """A notification about to be inserted, as the caps see it."""

    notification: Notification
    due: datetime
    uncapped: list[Delivery]  # its deliveries as planned without caps; never changed here
    deliveries: list[Delivery]  # what is inserted: `uncapped`, or their held/skipped versions


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
    since = min(plan.due for plan, _ in subject) - timedelta(seconds=max(cap.window_seconds for cap in caps))
    counted: dict[int, list[tuple[str, datetime]]] = {}
    for recipient_id, category, at in Notification.objects.filter(
        recipient_id__in=recipient_ids, cap_counted_at__gt=since
    ).values_list("recipient_id", "category", "cap_counted_at"):
        counted.setdefault(recipient_id, []).append((category, at))

    for plan, applicable in subject:
        notification = plan.notification
        history = counted.setdefault(notification.recipient_id, [])
        times = {cap: sorted(at for category, at in history if cap.applies_to(category)) for cap in applicable}
        over = [cap for cap in applicable if not _fits(times[cap], plan.due, cap)]
        if not over:
            slot = plan.due
        elif skipping := [cap for cap in over if cap.over_cap == OVER_CAP_SKIP]:
            plan.deliveries = [_skipped(d, cap=skipping[0], now=now) for d in plan.uncapped]
            continue
        else:
            slot = _first_slot(times, plan.due)
            plan.deliveries = [_held(d, cap=over[0], until=slot, now=now, recipient=notification.recipient)
                               for d in plan.uncapped]
        notification.cap_counted_at = slot
        history.append((notification.category, slot))


def _fits(times: list[datetime], at: datetime, cap: FrequencyCap) -> bool:
    """Would one more notification at `at` keep every window that contains it within the limit?
    The fullest such windows end at `at` or at a later notification less than a window away."""
    window = timedelta(seconds=cap.window_seconds)
    later = times[bisect_left(times, at):bisect_left(times, at + window)]
    # `times` is sorted; each window (end - window, end] holds `at` itself, plus what it counts there.
    return all(bisect_right(times, end) - bisect_right(times, end - window) + 1 <= cap.limit for end in [at, *later])


def _first_slot(times: dict[FrequencyCap, list[datetime]], due: datetime) -> datetime:
    """The earliest moment from `due` at which every cap has room: a moment when a counted
    notification leaves its window (only then can room appear)."""
    candidates = sorted({t + timedelta(seconds=cap.window_seconds) for cap, ts in times.items() for t in ts})
    for candidate in candidates:
        if candidate > due and all(_fits(ts, candidate, cap) for cap, ts in times.items()):
            return candidate
    # Unreachable: past the last counted notification's window every window is empty.
    return max(candidates[-1], due)


def _skipped(delivery: Delivery, *, cap: FrequencyCap, now: datetime) -> Delivery:
    if delivery.status == DeliveryStatus.SKIPPED:
        return delivery
    return Delivery(notification=delivery.notification, channel=delivery.channel, status=DeliveryStatus.SKIPPED,
                    skip_reason=f"{FREQUENCY_CAP_SKIP_PREFIX}: {cap.describe()}", status_changed_at=now)


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
