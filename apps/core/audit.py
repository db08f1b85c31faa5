"""The operators' audit log: one entry per action taken from the console or a command."""

import logging

from apps.core.models import OperatorAuditEntry

logger = logging.getLogger(__name__)

# An entry keeps at most this many ids in its details: a bulk action on a whole queue would
# otherwise write a megabyte into one row. The count is always exact.
MAX_RECORDED_IDS = 1000


def audit_record(*, action: str, target: str, count: int, actor=None, actor_label: str = "",
                 ids=(), **details) -> OperatorAuditEntry:
    """Record that an operator (`actor`, an admin user; or `actor_label`, e.g. `cli:ada`) did `action`
    to `count` rows of `target`. Called inside the action's transaction: no entry without the change."""
    label = actor_label or (actor.get_username() if actor is not None else "system")
    ids = [str(i) for i in ids]
    if ids:
        details["ids"] = ids[:MAX_RECORDED_IDS]
        details["ids_truncated"] = len(ids) > MAX_RECORDED_IDS
    entry = OperatorAuditEntry.objects.create(
        actor=actor, actor_label=label, action=action, target=target, count=count, details=details
    )
    logger.info("operator action %s on %d %s by %s", action, count, target, label)
    return entry
