"""A channel step's condition, decided from the database when the step comes due."""

from dataclasses import dataclass

from apps.inbox.selectors import inbox_message_read_at
from apps.notifications.models import ACTIVE_STATUSES, Delivery, DeliveryStatus
from apps.workflows.definitions import CONDITION_NOT_DELIVERED, CONDITION_UNREAD, IN_APP

# What "reached its provider" means for fallback: the provider took it and has not said otherwise.
REACHED_STATUSES = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)


@dataclass(frozen=True)
class Verdict:
    run: bool
    reason: str = ""
    settle_first: bool = False  # an earlier delivery is still in flight: decide once it settles


def condition_evaluate(*, condition: str, earlier: list) -> Verdict:
    """`earlier`: the run's steps before this one. Reads their deliveries as committed now; a
    delivery still moving makes the step wait for it rather than decide early."""
    if not condition:
        return Verdict(run=True)
    deliveries = {d.id: d for d in Delivery.objects.filter(
        id__in=[s.delivery_id for s in earlier if s.delivery_id]).only("id", "channel", "status")}
    if condition == CONDITION_NOT_DELIVERED:
        considered = [deliveries[s.delivery_id] for s in earlier if s.delivery_id in deliveries]
        if moving := [d for d in considered if d.status in ACTIVE_STATUSES]:
            return Verdict(run=False, settle_first=True,
                           reason=f"waiting for the {moving[0].channel} delivery to settle ({moving[0].status})")
        if reached := [d for d in considered if d.status in REACHED_STATUSES]:
            return Verdict(run=False, reason=f"not_delivered: the {reached[0].channel} delivery reached its "
                                             f"provider ({reached[0].status})")
        return Verdict(run=True, reason="not_delivered: no earlier step reached its provider")
    if condition == CONDITION_UNREAD:
        in_app = next((deliveries.get(s.delivery_id) for s in earlier if s.channel == IN_APP and s.delivery_id), None)
        if in_app is None:
            return Verdict(run=True, reason="unread: no in-app message was created")
        if in_app.status in ACTIVE_STATUSES:
            return Verdict(run=False, settle_first=True, reason=f"waiting for the in_app delivery ({in_app.status})")
        stored, read_at = inbox_message_read_at(delivery_id=in_app.id)
        if read_at is not None:
            return Verdict(run=False, reason=f"unread: the in-app message was read at {read_at:%Y-%m-%d %H:%M:%S} UTC")
        return Verdict(run=True, reason="unread: the in-app message is unread" if stored
                       else f"unread: the in-app delivery ended {in_app.status}")
    raise ValueError(f"unknown condition {condition!r}")
