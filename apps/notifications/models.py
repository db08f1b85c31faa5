import uuid

from django.conf import settings
from django.db import models

from apps.projects.models import Project
from apps.templates.models import Template, TemplateVersion
from apps.users.models import CATEGORY_MAX_LENGTH, Recipient


class Priority(models.TextChoices):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Notification(models.Model):
    """One request to notify one user; it fans out into one Delivery per channel."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="notifications", db_index=False)
    # SET_NULL: erasing a user keeps the delivery log, which then names them only by external id.
    recipient = models.ForeignKey(Recipient, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications")
    to = models.CharField(max_length=200, help_text="The user's external id.")
    template = models.ForeignKey(Template, on_delete=models.PROTECT, related_name="notifications")
    template_version = models.ForeignKey(TemplateVersion, on_delete=models.PROTECT, related_name="notifications")
    data = models.JSONField(default=dict, blank=True)
    category = models.CharField(max_length=CATEGORY_MAX_LENGTH, blank=True)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    send_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    # The workflow whose run this notification started or joined (apps.workflows), or "": only
    # these wake a run when one of their deliveries settles, so other sends pay nothing for it.
    # db_default: rows inserted by code that predates the column (a deploy rolling out) get "" too.
    workflow_key = models.CharField(max_length=100, blank=True, default="", db_default="")
    # The broadcast that fanned out to this user, if any. Why some keys have no index: migration 0016.
    broadcast = models.ForeignKey("Broadcast", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="notifications", db_index=False)
    # The id of the API request that created it (X-Request-ID; a broadcast's for its fan-out):
    # workers, the sweep and status webhooks log and send it, so one id follows it everywhere.
    correlation_id = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # When the notification counts against its project's frequency caps: when it is due (its
    # send_at, or its acceptance), or the later time a cap deferred it to. Null when it does not
    # count: exempt (high priority, critical category), nothing to send, skipped by a cap, cancelled.
    cap_counted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="notification_unique_idempotency_key",
            ),
            # A fan-out resumed after a crash cannot notify anyone twice.
            models.UniqueConstraint(
                fields=["broadcast", "recipient"],
                condition=models.Q(broadcast__isnull=False),
                name="notification_unique_broadcast_recipient",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "-created_at"], name="notification_project_recent"),
            # The frequency caps' count: one user's notifications within a window.
            models.Index(fields=["recipient", "cap_counted_at"], condition=models.Q(cap_counted_at__isnull=False),
                         name="notification_cap_count"),
            # The console's search by the user's external id, across projects.
            models.Index(fields=["to"], name="notification_to"),
        ]

    def __str__(self) -> str:
        return f"{self.template} → {self.to}"


class BroadcastStatus(models.TextChoices):
    PENDING = "pending"  # accepted; the fan-out has not started
    RUNNING = "running"  # notifications are being created, batch by batch
    COMPLETED = "completed"  # every recipient has its notification or is counted as skipped
    CANCELLED = "cancelled"
    FAILED = "failed"  # the fan-out kept failing; what it created stays


class Broadcast(models.Model):
    """One template to many users: a list of external ids (`to`) or a filter over the project's users
    (`audience`), fanned out in the background into one Notification per user.

    The fan-out works in batches, each committed with `cursor` (the position in `to`, or the last
    recipient id for an audience), so a worker killed mid-way resumes where the last commit left
    off; `heartbeat_at` tells the sweep whether a fan-out is still alive.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="broadcasts")
    template = models.ForeignKey(Template, on_delete=models.PROTECT, related_name="broadcasts")
    template_version = models.PositiveIntegerField(null=True, blank=True, help_text="Pinned version number, if any.")
    # A workflow's key: each user's notification starts a run of it (`template` is then the workflow's).
    workflow_key = models.CharField(max_length=100, blank=True, default="", db_default="")
    data = models.JSONField(default=dict, blank=True)
    channels = models.JSONField(null=True, blank=True)
    category = models.CharField(max_length=CATEGORY_MAX_LENGTH, blank=True)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    send_at = models.DateTimeField(null=True, blank=True)
    # The creating request's id, given to every notification of the fan-out.
    correlation_id = models.CharField(max_length=128, blank=True, default="")
    to = models.JSONField(null=True, blank=True, help_text="External ids, without repeats; null for an audience.")
    # The key that asked: an audience's fan-out pays its rate per user, from this key's bucket.
    api_key = models.ForeignKey("projects.ApiKey", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    audience = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=BroadcastStatus.choices, default=BroadcastStatus.PENDING)
    total = models.PositiveIntegerField(null=True, blank=True, help_text="Counted when the fan-out starts.")
    created = models.PositiveIntegerField(default=0, help_text="Notifications with something to send.")
    skipped = models.PositiveIntegerField(default=0, help_text="Users with nothing to send (unknown, unreachable, declined).")
    failed = models.PositiveIntegerField(default=0)
    cursor = models.BigIntegerField(default=0)
    last_error = models.TextField(blank=True)
    error_count = models.PositiveIntegerField(default=0)
    idempotency_key = models.CharField(max_length=255, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="broadcast_unique_idempotency_key",
            ),
        ]
        indexes = [
            # The sweep's query: fan-outs still to do, by how long they have been silent.
            models.Index(fields=["heartbeat_at"], condition=models.Q(status__in=["pending", "running"]),
                         name="broadcast_unfinished"),
        ]

    def __str__(self) -> str:
        return f"broadcast of {self.template} ({self.status})"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # scheduled, or held (quiet hours)
    QUEUED = "queued"  # published to its channel queue
    SENDING = "sending"  # a worker has claimed it
    SENT = "sent"  # the provider accepted it
    DELIVERED = "delivered"  # the provider reported it reached the user
    UNDELIVERED = "undelivered"  # the provider reported it did not
    RETRYING = "retrying"  # a transient error; next attempt at next_attempt_at
    FAILED = "failed"  # a permanent error
    DEAD = "dead"  # retries exhausted: the dead-letter queue
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # preferences, or no contact point (see skip_reason)


# Statuses a delivery is still moving through; everything else is final.
ACTIVE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.RETRYING)
# A worker may claim a delivery only from these: anything else means another worker has it or it is done.
CLAIMABLE_STATUSES = (DeliveryStatus.QUEUED, DeliveryStatus.RETRYING)
SENT_STATUSES = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED)
# The dead-letter queue of record, as a filter on deliveries: the admin, `dlq`, the dashboard and
# the metrics read it with this, and its partial index below has this condition.
DEAD_LETTERS = models.Q(status=DeliveryStatus.DEAD, discarded_at__isnull=True)


class Delivery(models.Model):
    """One notification on one channel: the unit that is queued, sent, retried and dead-lettered.

    The database row is the truth about a delivery; broker messages carry only its id, and a
    lost message is recovered by the sweep through `recheck_at`.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    channel = models.CharField(max_length=16)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    status_changed_at = models.DateTimeField()
    # Attempts ever made (numbers the attempt rows), and attempts since the budget was last reset
    # by a replay: the latter is what max attempts bounds.
    attempt_count = models.PositiveIntegerField(default=0)
    budget_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When the sweep should step in if nothing has moved the delivery by then (a lost message, a
    # worker killed mid-send, a retry that never came back). Only meaningful while active.
    recheck_at = models.DateTimeField(null=True, blank=True)
    last_error_code = models.CharField(max_length=100, blank=True)
    last_error = models.TextField(blank=True)
    skip_reason = models.CharField(max_length=200, blank=True)
    # Why the delivery was held past its due time (the user's quiet hours). Kept once released: it
    # explains a send at 07:00 for a notification created at 23:00.
    hold_reason = models.CharField(max_length=200, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # A dead delivery an operator chose not to replay: it stays `dead` (its history is true: the
    # retries ran out) but leaves the dead-letter queue. See operations/dead_letters.py.
    discarded_at = models.DateTimeField(null=True, blank=True)
    # A cancel that came while the delivery was `sending`: its worker ends it `cancelled` instead
    # of retrying, unless that attempt reached the provider (then it is `sent`). See delivery/sending.py.
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["notification", "channel"], name="delivery_one_per_channel"),
        ]
        indexes = [
            # The sweep's only query: small, because it holds active deliveries alone.
            models.Index(
                fields=["recheck_at"],
                condition=models.Q(status__in=["pending", "queued", "sending", "retrying"]),
                name="delivery_active_recheck",
            ),
            models.Index(fields=["status", "channel"], name="delivery_status_channel"),
            models.Index(fields=["provider_message_id"], condition=~models.Q(provider_message_id=""),
                         name="delivery_provider_message"),
            # Retention's query: final deliveries, oldest first (apps/notifications/operations/retention.py).
            models.Index(
                fields=["status_changed_at"],
                condition=~models.Q(status__in=["pending", "queued", "sending", "retrying"]),
                name="delivery_final_changed",
            ),
            # The dead-letter queue of record: what `dlq list` and the admin's Dead letters read.
            models.Index(
                fields=["status_changed_at"],
                condition=DEAD_LETTERS,
                name="delivery_dead_letters",
            ),
            # The dashboard's windows (operations/stats.py): recent deliveries by channel and status, and
            # recent sends with their latency, each read from its index alone, not the table.
            models.Index(fields=["created_at", "channel", "status"], name="delivery_recent"),
            models.Index(fields=["sent_at", "channel", "created_at"], condition=models.Q(sent_at__isnull=False),
                         name="delivery_sent_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} delivery {self.id} ({self.status})"


class AttemptOutcome(models.TextChoices):
    SENT = "sent"
    TRANSIENT_ERROR = "transient_error"
    PERMANENT_ERROR = "permanent_error"
    INTERNAL_ERROR = "internal_error"  # our bug, not the provider's answer
    WORKER_LOST = "worker_lost"  # the worker died mid-send; found by the sweep


class DeliveryAttempt(models.Model):
    """One try at sending a delivery, with what the provider answered."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices)
    # The provider that gave this answer (channels with several: the failover's order), and the
    # ones the attempt went past before it: [{provider, error_code, error}] (apps/channels/failover.py).
    # Defaults in the database too: a worker still running the previous release while the
    # migration lands inserts attempts without them.
    provider = models.CharField(max_length=200, blank=True, default="", db_default="")
    passed_over = models.JSONField(default=list, blank=True, db_default=models.Value([], models.JSONField()))
    provider_message_id = models.CharField(max_length=255, blank=True)
    provider_response = models.JSONField(default=dict, blank=True)
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    # After a transient error: when the next try was planned, so the backoff can be read back.
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("delivery", "number")  # attempt_unique_number: the delivery's only index (migration 0017)
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="attempt_unique_number")]
        # The dashboard's provider error rates over a recent window (operations/stats.py).
        indexes = [models.Index(fields=["started_at"], name="attempt_recent")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"


class DeadLetter(Delivery):
    """The dead-letter queue of record, for the admin: dead deliveries not yet discarded."""

    class Meta:
        proxy = True
        verbose_name = "dead letter"


class OperatorActionKind(models.TextChoices):
    REPLAY = "replay"
    DISCARD = "discard"


class DeliveryOperatorAction(models.Model):
    """An operator replayed or discarded a delivery: who (an admin user, or a CLI label) and when."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="operator_actions")
    action = models.CharField(max_length=16, choices=OperatorActionKind.choices)
    # The admin user; null for `manage.py dlq`, which records the OS user in actor_label instead.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_label = models.CharField(max_length=150)
    previous_status = models.CharField(max_length=16, choices=DeliveryStatus.choices)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.action} of {self.delivery_id} by {self.actor_label}"


class EarlyReceipt(models.Model):
    """A provider's receipt that arrived before the worker recorded the send it reports on.

    A provider can call back between accepting a message and our worker committing `sent` with
    its message id. The receipt waits here until that commit, then is applied and deleted
    (delivery/receipts.py); one whose send is never recorded is pruned after a day.
    """

    channel = models.CharField(max_length=16)
    provider_message_id = models.CharField(max_length=255)
    delivered = models.BooleanField()
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            # The first final receipt wins, as for a recorded send.
            models.UniqueConstraint(fields=["channel", "provider_message_id"], name="early_receipt_unique_message"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} receipt for {self.provider_message_id} ({'delivered' if self.delivered else 'undelivered'})"


# The delivery statuses a project's status_webhook_url is told about: what a product backend acts
# on. The steps in between (queued, sending, retrying) are not reported.
REPORTED_STATUSES = (
    DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED,
    DeliveryStatus.DEAD, DeliveryStatus.CANCELLED, DeliveryStatus.SKIPPED,
)


class StatusEventStatus(models.TextChoices):
    PENDING = "pending"  # written with the status change; its message is on the way
    SENDING = "sending"  # a worker is posting it
    RETRYING = "retrying"  # the receiver failed; next try at next_attempt_at
    SENT = "sent"  # the receiver answered 2xx
    FAILED = "failed"  # a permanent error (a 4xx, an address not allowed, no secret to sign with)
    DEAD = "dead"  # attempts exhausted


ACTIVE_EVENT_STATUSES = (StatusEventStatus.PENDING, StatusEventStatus.SENDING, StatusEventStatus.RETRYING)


class StatusEvent(models.Model):
    """The outbox of status webhooks: one row per reported status change of a delivery.

    Written in the transaction that changes the delivery's status (outbox/status_events.py), so an event
    exists exactly when the change does; posted to the project's status_webhook_url by its own
    task, retried with backoff, and recovered by its sweep through `recheck_at` like a delivery.
    `sequence` numbers the events of one delivery from 1: the delivery's row lock orders the
    writers, so it only grows.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="status_events")
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="status_events")
    sequence = models.PositiveIntegerField()
    delivery_status = models.CharField(max_length=16, choices=DeliveryStatus.choices)
    previous_status = models.CharField(max_length=16, choices=DeliveryStatus.choices, blank=True)
    error_code = models.CharField(max_length=100, blank=True)
    skip_reason = models.CharField(max_length=200, blank=True)
    occurred_at = models.DateTimeField()
    # The outbox row's own progress towards the receiver.
    status = models.CharField(max_length=16, choices=StatusEventStatus.choices, default=StatusEventStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    recheck_at = models.DateTimeField(null=True, blank=True)
    last_error_code = models.CharField(max_length=100, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "status webhook event"
        constraints = [
            models.UniqueConstraint(fields=["delivery", "sequence"], name="status_event_unique_sequence"),
        ]
        indexes = [
            # The status webhook sweep's query, small because it holds unfinished events alone.
            models.Index(fields=["recheck_at"], condition=models.Q(status__in=["pending", "sending", "retrying"]),
                         name="status_event_active_recheck"),
            models.Index(fields=["status", "-occurred_at"], name="status_event_status_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.delivery_status} #{self.sequence} of {self.delivery_id} ({self.status})"
