from django.db.models import QuerySet

from apps.core.exceptions import NotFound
from apps.inbox.models import InboxMessage
from apps.users.models import Recipient


def inbox_list(*, recipient: Recipient, unread: bool = False) -> QuerySet[InboxMessage]:
    messages = InboxMessage.objects.filter(recipient=recipient)
    if unread:
        messages = messages.filter(read_at__isnull=True)
    return messages.order_by("-id")


def inbox_message_get(*, recipient: Recipient, message_id: int) -> InboxMessage:
    """The user's own message; another user's id is as unknown as one that does not exist."""
    message = InboxMessage.objects.filter(recipient=recipient, id=message_id).first()
    if message is None:
        raise NotFound(f"No inbox message with id {message_id}.")
    return message


def inbox_unread_count(*, recipient: Recipient) -> int:
    return InboxMessage.objects.filter(recipient=recipient, read_at__isnull=True).count()


def inbox_messages_after(*, recipient_id: int, after_id: int, limit: int = 100) -> list[InboxMessage]:
    """The user's messages with an id above after_id, oldest first: what a stream has not sent yet."""
    return list(InboxMessage.objects.filter(recipient_id=recipient_id, id__gt=after_id).order_by("id")[:limit])


def inbox_latest_id(*, recipient_id: int) -> int:
    """The id of the user's newest message, 0 if none: where a stream without Last-Event-ID starts."""
    latest = InboxMessage.objects.filter(recipient_id=recipient_id).order_by("-id").values_list("id", flat=True).first()
    return latest or 0


def inbox_owner_exists(*, recipient_id: int) -> bool:
    """Whether the stream's user is still there (erasing a user wakes their streams to ask)."""
    return Recipient.objects.filter(id=recipient_id).exists()


def inbox_message_read_at(*, delivery_id) -> tuple[bool, object]:
    """(whether the delivery left a message, when it was read or None)."""
    row = InboxMessage.objects.filter(delivery_id=delivery_id).values_list("read_at").first()
    return (False, None) if row is None else (True, row[0])
