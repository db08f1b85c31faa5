"""Erasing a user: one service above the apps that hold their data (users, notifications, inbox).

Each app erases what it owns; only this module knows them all, so none of them imports another
above it.
"""

from django.db import transaction

from apps.inbox.live import inbox_erasure_announce
from apps.notifications.intake.services import notifications_erase_recipient_data
from apps.users.models import Recipient
from apps.users.services import recipient_delete


@transaction.atomic
def recipient_erase(*, recipient: Recipient) -> None:
    """Erase the user: contact data, devices and inbox go; the delivery log keeps its statuses and
    names the user only by external id, its personal data scrubbed."""
    recipient_id = recipient.id
    notifications_erase_recipient_data(recipient=recipient)
    recipient_delete(recipient=recipient)
    # Their open inbox streams end now rather than when their tokens expire.
    transaction.on_commit(lambda: inbox_erasure_announce(recipient_id=recipient_id))
