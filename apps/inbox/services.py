from datetime import datetime

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.core.batches import BatchDeletion, rows_delete_in_batches
from apps.inbox.live import inbox_message_announce
from apps.inbox.models import InboxMessage
from apps.users.models import Recipient


class InboxRecipientGone(Exception):
    """The user was erased before their message could be stored."""


def inbox_message_create(
    *, delivery_id: str, project_id: int, recipient_id: int, title: str, body: str, url: str = "",
    lock_timeout_seconds: float | None = None,
) -> tuple[InboxMessage, bool]:
    """Put a delivery's message in its user's inbox and tell live streams once committed.

    Idempotent per delivery: a redelivered task gets the first message back (created=False).
    Raises InboxRecipientGone when the user was erased meanwhile. With lock_timeout_seconds,
    waiting longer than that for the user's row raises OperationalError (PostgreSQL only).
    """
    with transaction.atomic():
        if lock_timeout_seconds is not None and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{int(lock_timeout_seconds * 1000)}ms"])
        # Lock the user's row so that one user's messages commit in id order: a stream that has
        # sent message N must never see a smaller id commit afterwards, or it would skip it.
        try:
            Recipient.objects.select_for_update().only("id").get(id=recipient_id)
        except Recipient.DoesNotExist:
            raise InboxRecipientGone(recipient_id) from None
        message, created = InboxMessage.objects.get_or_create(
            delivery_id=delivery_id,
            defaults={
                "project_id": project_id,
                "recipient_id": recipient_id,
                "title": title,
                "body": body,
                "url": url,
            },
        )
        if created:
            recipient_id, message_id = message.recipient_id, message.id
            transaction.on_commit(lambda: inbox_message_announce(recipient_id=recipient_id, message_id=message_id))
    return message, created


def inbox_message_mark_read(*, message: InboxMessage) -> InboxMessage:
    """Mark read; a message already read keeps the time it was first read."""
    InboxMessage.objects.filter(id=message.id, read_at__isnull=True).update(read_at=timezone.now())
    message.refresh_from_db(fields=["read_at"])
    return message


def inbox_message_mark_unread(*, message: InboxMessage) -> InboxMessage:
    InboxMessage.objects.filter(id=message.id).update(read_at=None)
    message.read_at = None
    return message


def inbox_read_all(*, recipient: Recipient) -> int:
    """Mark every unread message of the user read; return how many changed."""
    return InboxMessage.objects.filter(recipient=recipient, read_at__isnull=True).update(read_at=timezone.now())


def inbox_messages_expired(*, before: datetime) -> QuerySet:
    """Messages older than the inbox's retention period, read or not."""
    return InboxMessage.objects.filter(created_at__lt=before)


def inbox_messages_purge(*, before: datetime, batch_size: int, deadline: float) -> BatchDeletion:
    """Delete messages created before `before`, oldest first (ids grow with time), in batches."""
    return rows_delete_in_batches(queryset=inbox_messages_expired(before=before), order_by=("id",),
                                  batch_size=batch_size, deadline=deadline)
