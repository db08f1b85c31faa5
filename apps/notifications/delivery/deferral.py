"""Deferring a send while its project has used up its share of the channel's workers.

The delivery is not claimed, so it stays `queued` and spends no attempt: its task publishes its
own message again with a countdown that grows with each deferral (up to
NOTIFIER_SHARE_DEFER_MAX_SECONDS), so a project with a long backlog behind a hung receiver costs
a few republished messages a minute, not a busy loop. If that publish fails, the sweep publishes
the delivery (its recheck_at is brought forward).
"""

import contextlib
import random
from collections.abc import Iterator

from django.conf import settings
from django.db import InterfaceError, OperationalError

from apps.channels.shares import project_send_lease, shares_bound
from apps.core.ids import uuid_or_none
from apps.notifications.delivery.sending import DatabaseUnavailable
from apps.notifications.models import Delivery


@contextlib.contextmanager
def delivery_send_lease(*, delivery_id: str, deferrals: int) -> Iterator[float | None]:
    """Hold a lease of the delivery's project share for the block. Yields None to send now, or the
    seconds to defer the send by; `deferrals` is how often this message was deferred already."""
    route = _route(delivery_id) if shares_bound() else None
    if route is None:
        yield None
        return
    channel, project_id = route
    with project_send_lease(channel=channel, project_id=project_id) as leased:
        if leased:
            yield None
        else:
            wait = min(settings.NOTIFIER_SHARE_DEFER_SECONDS * 2 ** min(deferrals, 16),
                       settings.NOTIFIER_SHARE_DEFER_MAX_SECONDS)
            yield random.uniform(wait / 2, wait)  # deferred sends of one project spread out


def _route(delivery_id: str) -> tuple[str, int] | None:
    if uuid_or_none(delivery_id) is None:
        return None  # delivery_send refuses it
    try:
        return Delivery.objects.filter(id=delivery_id).values_list("channel", "notification__project_id").first()
    except (OperationalError, InterfaceError) as exc:
        raise DatabaseUnavailable(str(exc)) from exc  # the task tries again in a few seconds
