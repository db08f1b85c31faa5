"""Erasing a user: one service above the apps that hold their data (users, notifications, inbox).

Each app erases what it owns; only this module knows them all, so none of them imports another
above it.
"""

from django.db import transaction

from apps.core.audit import audit_record
from apps.inbox.live import inbox_erasure_announce
from apps.notifications.intake.services import notifications_erase_recipient_data
from apps.users.models import Recipient
from apps.users.services import recipient_delete


@transaction.atomic
def recipients_erase(*, recipients, actor=None, actor_label: str = "") -> int:
    """Erase the users: contact data, devices and inbox go; the delivery log keeps its statuses and
    names each user only by external id, its personal data scrubbed. One audit entry records who
    (`actor`, the console's user; or `actor_label`, an API key) erased which external ids.
    Returns how many users were erased."""
    erased = []
    for recipient in recipients:
        erased.append((recipient.id, recipient.project.name, recipient.external_id))
        notifications_erase_recipient_data(recipient=recipient)
        recipient_delete(recipient=recipient)
    if erased:
        audit_record(action="users.erase", target="recipients.recipient", count=len(erased), actor=actor,
                     actor_label=actor_label, ids=[f"{project}/{external_id}" for _, project, external_id in erased])
    # Their open inbox streams end now rather than when their tokens expire.
    for recipient_id, _, _ in erased:
        transaction.on_commit(lambda recipient_id=recipient_id: inbox_erasure_announce(recipient_id=recipient_id))
    return len(erased)


def recipient_erase(*, recipient: Recipient, actor=None, actor_label: str = "") -> None:
    """Erase one user (see recipients_erase)."""
    recipients_erase(recipients=[recipient], actor=actor, actor_label=actor_label)
