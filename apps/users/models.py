from django.db import models

from apps.projects.models import Project

# A notification's category, named here because users' preferences are keyed by it.
CATEGORY_MAX_LENGTH = 100


class Recipient(models.Model):
    """A person a project notifies (`/api/v1/users/{external_id}`), known by the project's own id.

    Not a login: the operators who use the admin are Django's auth users.
    """

    # No index of its own: `recipient_project_keyset` and the unique (project, external_id) lead with it.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="recipients", db_index=False)
    external_id = models.CharField(max_length=200)
    email = models.EmailField(blank=True, max_length=254)
    phone = models.CharField(blank=True, max_length=20, help_text="E.164, e.g. +14155550123")
    locale = models.CharField(blank=True, max_length=16)
    timezone = models.CharField(blank=True, max_length=64)
    name = models.CharField(blank=True, max_length=200)
    data = models.JSONField(default=dict, blank=True)
    # Preferences (`/users/{id}/preferences`; applied by apps/users/preferences.py). Kept on the row
    # itself: creating a notification loads the user anyway, so applying them costs no query.
    channel_preferences = models.JSONField(default=dict, blank=True, help_text='e.g. {"sms": false}')
    category_preferences = models.JSONField(default=dict, blank=True, help_text='e.g. {"marketing": {"email": false}}')
    quiet_hours_start = models.TimeField(null=True, blank=True, help_text="In the user's time zone.")
    quiet_hours_end = models.TimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "notified user"
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="recipient_unique_external_id"),
        ]
        indexes = [
            # The console's search by email or phone (exact match).
            models.Index(fields=["email"], name="recipient_email"),
            models.Index(fields=["phone"], name="recipient_phone"),
            # A broadcast's pages of its project's users, in id order from a cursor: read in order,
            # 1,000 entries a page whatever other projects hold (docs/performance.md).
            models.Index(fields=["project", "id"], name="recipient_project_keyset"),
        ]

    def __str__(self) -> str:
        return self.external_id


class DevicePlatform(models.TextChoices):
    ANDROID = "android"
    IOS = "ios"
    WEB = "web"


class Device(models.Model):
    """An app instance of a user that push notifications go to, known by its FCM registration token.

    `active` goes false when FCM answers UNREGISTERED (the app was uninstalled or the token
    rotated); registering the token again re-activates it.
    """

    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="devices")
    # FCM registration tokens are ~160 characters today; the bound keeps the unique index small.
    token = models.CharField(max_length=512)
    platform = models.CharField(max_length=8, choices=DevicePlatform.choices)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the user's app last registered this token: stale devices can be told apart.
    last_seen_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recipient", "token"], name="device_unique_token_per_recipient"),
        ]
        indexes = [models.Index(fields=["token"], name="device_token")]

    def __str__(self) -> str:
        return f"{self.platform} device …{self.token[-6:]}"


class UnsubscribeSource(models.TextChoices):
    ONE_CLICK = "one-click"  # a mail client's RFC 8058 POST (List-Unsubscribe=One-Click)
    PAGE = "page"  # the user pressed the button of the confirmation page


class Unsubscribe(models.Model):
    """An unsubscribe through an email's link: a record for the project's operators, kept while
    the user is (erasing the user deletes it with them). One per user, category and channel: the
    first request is kept, a repeat (a mail client retrying, a page reloaded) adds nothing.

    It is also what makes the unsubscribe explicit: it holds even if the project later marks the
    category critical (apps/users/preferences.py)."""

    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="unsubscribes")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="unsubscribes")
    category = models.CharField(max_length=CATEGORY_MAX_LENGTH)
    channel = models.CharField(max_length=16)
    source = models.CharField(max_length=16, choices=UnsubscribeSource.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recipient", "category", "channel"], name="unsubscribe_once"),
        ]
        indexes = [models.Index(fields=["project", "-created_at"], name="unsubscribe_project_recent")]

    def __str__(self) -> str:
        return f"{self.recipient} from {self.category} ({self.channel})"
