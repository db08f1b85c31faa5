from django.db import models

from apps.notifications.models import Delivery
from apps.projects.models import Project
from apps.users.models import Recipient


class InboxMessage(models.Model):
    """One in-app message in a user's inbox: what an `in_app` delivery leaves behind.

    The id only grows, so it doubles as the live stream's event id (`Last-Event-ID` resumes after it).
    """

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="inbox_messages")
    # CASCADE: erasing a user erases their inbox (the delivery log keeps only the external id).
    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="inbox_messages")
    # One message per delivery, so a redelivered task cannot leave two. SET_NULL: purging old
    # notifications must not empty the inboxes that still show them.
    delivery = models.OneToOneField(
        Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbox_message"
    )
    title = models.TextField()
    body = models.TextField()
    url = models.TextField(blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # The inbox page, newest first, and the stream's "after this id".
            models.Index(fields=["recipient", "-id"], name="inbox_recipient_recent"),
            # The unread count and ?unread=true: small, since most messages end up read.
            models.Index(fields=["recipient"], condition=models.Q(read_at__isnull=True), name="inbox_recipient_unread"),
        ]

    def __str__(self) -> str:
        return f"{self.title} → {self.recipient_id}"
