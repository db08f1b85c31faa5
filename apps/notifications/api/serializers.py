import re
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from apps.core.fields import IdempotencyKeyField, JSONObjectField
from apps.notifications.intake.broadcasts import BROADCAST_MAX_TO
from apps.notifications.intake.selectors import notification_status
from apps.notifications.models import Broadcast, Delivery, DeliveryAttempt, Notification, Priority
from apps.notifications.workflow_hooks import workflow_hooks


class _MessageInputSerializer(serializers.Serializer):
    """What a notification and a broadcast both say: which template, with what, how."""

    template = serializers.SlugField(max_length=100)
    template_version = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=2**31 - 1,
        help_text="Pin this version of the template (a version is in one locale: pinning skips the locale "
                  "fallback). Left out: the newest version in the user's locale.",
    )
    data = JSONObjectField(required=False, default=dict)
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=settings.NOTIFICATION_CHANNELS), required=False, allow_empty=False
    )
    category = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    priority = serializers.ChoiceField(choices=Priority.choices, required=False, default=Priority.NORMAL)
    send_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None,
        help_text="When to send (ISO-8601); a past time means now. At most NOTIFIER_MAX_SEND_AT_DAYS (365) days ahead.",
    )

    def validate_send_at(self, value):
        # A bound on how long a row may wait, and on the date arithmetic done with it (quiet
        # hours move it to a later day: year 9999 would overflow).
        horizon = timedelta(days=settings.NOTIFIER_MAX_SEND_AT_DAYS)
        if value is not None and value > timezone.now() + horizon:
            raise serializers.ValidationError(f"send_at may be at most {horizon.days} days ahead.")
        return value


class NotificationInputSerializer(_MessageInputSerializer):
    to = serializers.CharField(max_length=200)
    workflow = serializers.SlugField(
        max_length=100, required=False,
        help_text="A workflow's key instead of `template`: its steps decide which channel goes when "
                  "(`channels` and `template_version` do not apply).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].required = False

    def validate(self, attrs):
        return _template_or_workflow(attrs)


# The body nearly every single POST sends: {"to", "template"} and maybe "data", plain text. DRF's
# walk over the serializer's ten fields (each one's empty-value checks, conversion and validators,
# the declared order, the defaults) was ~9% of such a POST's Python calls; for that body its answer
# is the two strings as sent, a shallow copy of `data` as its own field checks it, and every other
# field's default. Anything else, or anything these checks doubt, goes through DRF, which also
# writes every error, so a 400 is the same 400.
_PLAIN_KEYS = frozenset({"to", "template", "data"})
_SLUG = re.compile(r"[-a-zA-Z0-9_]+")  # SlugField's, ASCII


def notification_input_validate(serializer: NotificationInputSerializer, body) -> dict:
    """What `serializer.run_validation(body)` returns (or raises), the plain body's fields found
    without DRF's per-field machinery."""
    fields = _plain_notification_fields(serializer, body)
    return fields if fields is not None else serializer.run_validation(body)


def _plain_notification_fields(serializer: NotificationInputSerializer, body) -> dict | None:
    if type(body) is not dict or not body.keys() <= _PLAIN_KEYS:
        return None
    to, template = body.get("to"), body.get("template")
    if not (_plain_text(to, serializer.fields["to"].max_length)
            and _plain_text(template, serializer.fields["template"].max_length) and _SLUG.fullmatch(template)):
        return None
    fields = {"to": to, "template": template}
    data = body.get("data", empty)
    if data is not empty:
        if type(data) is not dict:
            return None
        fields["data"] = dict(data)  # the copy DictField makes (a JSON object's keys are strings already)
        try:
            serializer.fields["data"].check_storable(fields["data"])
        except serializers.ValidationError:
            return None
    for name, field in serializer.fields.items():
        if name not in fields and field.default is not empty:
            fields[name] = field.get_default()
    return fields


def _plain_text(value, max_length: int) -> bool:
    """Text a CharField keeps as it is and accepts: printable ASCII (no NUL, no surrogate), not
    blank, nothing to trim, not too long."""
    return (type(value) is str and 0 < len(value) <= max_length and value.isascii() and value.isprintable()
            and value.strip() == value)


def _template_or_workflow(attrs: dict) -> dict:
    if ("template" in attrs) == ("workflow" in attrs):
        raise serializers.ValidationError({"template": 'Give either "template" or "workflow".'})
    if "workflow" in attrs and (attrs.get("channels") or attrs.get("template_version") is not None):
        raise serializers.ValidationError({"workflow": "A workflow's steps choose the channels and the template."})
    return attrs


# One bulk request's items: large enough to amortise the round trips, small enough that its answer
# (and its publish) stays well under a second and its body under NOTIFIER_MAX_REQUEST_BYTES.
BULK_MAX_NOTIFICATIONS = 1000


class NotificationBulkItemSerializer(NotificationInputSerializer):
    idempotency_key = IdempotencyKeyField(required=False, allow_blank=True, default="",
                                          help_text="As the Idempotency-Key header of a single POST, for this item.")


class NotificationBulkEnvelopeSerializer(serializers.Serializer):
    """The envelope only: each item is validated on its own, so one bad item is that item's error."""

    notifications = serializers.ListField(child=serializers.JSONField(), allow_empty=False,
                                          max_length=BULK_MAX_NOTIFICATIONS)


class NotificationBulkRequestSerializer(serializers.Serializer):
    """The documented shape of the bulk request (NotificationBulkEnvelopeSerializer validates it)."""

    notifications = serializers.ListField(child=NotificationBulkItemSerializer(), max_length=BULK_MAX_NOTIFICATIONS)


class NotificationListQuerySerializer(serializers.Serializer):
    to = serializers.CharField(required=False, default="")
    status = serializers.ChoiceField(choices=Delivery._meta.get_field("status").choices, required=False, default="")
    channel = serializers.ChoiceField(choices=settings.NOTIFICATION_CHANNELS, required=False, default="")


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ("number", "started_at", "duration_ms", "outcome", "provider", "passed_over", "provider_message_id",
                  "error_code", "error_message")


class DeliverySummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        # The reasons as in the detail: "" when there is none, so every delivery has the same keys.
        fields = ("id", "channel", "status", "skip_reason", "hold_reason")


class DeliveryDetailSerializer(serializers.ModelSerializer):
    attempts = DeliveryAttemptSerializer(many=True, read_only=True)
    last_error = serializers.SerializerMethodField()

    class Meta:
        model = Delivery
        fields = ("id", "channel", "status", "skip_reason", "hold_reason", "attempt_count", "next_attempt_at", "sent_at",
                  "provider_message_id", "attempts", "last_error", "cancel_requested_at")

    def get_last_error(self, delivery) -> dict | None:
        if not (delivery.last_error or delivery.last_error_code):
            return None
        return {"code": delivery.last_error_code, "message": delivery.last_error}


class _NotificationBaseSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    template = serializers.CharField(source="template.key")

    def get_status(self, notification) -> str:
        return notification_status([d.status for d in notification.deliveries.all()])


class NotificationCreatedSerializer(serializers.Serializer):
    """The 202 body, from a services.NotificationAccepted: its deliveries are known, none is read back."""

    id = serializers.UUIDField()
    status = serializers.CharField()
    deliveries = DeliverySummarySerializer(many=True)


def notification_created_body(accepted) -> dict:
    """NotificationCreatedSerializer's representation of a services.NotificationAccepted, written
    out: DRF's walk over the two serializers' fields was ~4% of a single POST's Python calls, and
    the body is a few strings. The serializer stays the documented shape (the schema), and a test
    holds the two to the same JSON."""
    return {"id": str(accepted.id), "status": str(accepted.status), "deliveries": [
        {"id": str(delivery.id), "channel": str(delivery.channel), "status": str(delivery.status),
         "skip_reason": str(delivery.skip_reason), "hold_reason": str(delivery.hold_reason)}
        for delivery in accepted.deliveries
    ]}


@extend_schema_field({"oneOf": [{"$ref": "#/components/schemas/NotificationCreated"},
                               {"$ref": "#/components/schemas/ErrorEnvelope"}]})
class _BulkResultField(serializers.DictField):
    pass


class NotificationBulkResultSerializer(serializers.Serializer):
    results = serializers.ListField(
        child=_BulkResultField(),
        help_text="One per item, in order: the single create's 202 body, or that item's error envelope.",
    )


_WORKFLOW_RUN_SCHEMA = {
    "type": "object", "nullable": True,
    "description": "The workflow run this notification started or joined (a digest), with each step's state; "
                   "null for a template's notification.",
    "properties": {
        "key": {"type": "string"}, "version": {"type": "integer"}, "run": {"type": "string", "format": "uuid"},
        "state": {"type": "string", "enum": ["collecting", "active", "done", "cancelled"]},
        "due_at": {"type": "string", "format": "date-time", "nullable": True},
        "notification": {"type": "string", "format": "uuid", "description": "The notification carrying the run's deliveries."},
        "joined": {"type": "boolean", "description": "True when this notification joined another one's digest."},
        "position": {"type": "integer", "nullable": True}, "event_count": {"type": "integer", "nullable": True},
        "steps": {"type": "array", "items": {"type": "object", "properties": {
            "index": {"type": "integer"}, "channel": {"type": "string"}, "if": {"type": "string"},
            "wait": {"type": "integer"},
            "state": {"type": "string", "enum": ["pending", "waiting", "done", "skipped", "cancelled"]},
            "reason": {"type": "string"}, "due_at": {"type": "string", "format": "date-time", "nullable": True},
            "finished_at": {"type": "string", "format": "date-time", "nullable": True},
            "delivery": {"type": "string", "format": "uuid", "nullable": True}}}},
    },
}


class NotificationDetailSerializer(_NotificationBaseSerializer):
    deliveries = DeliveryDetailSerializer(many=True, read_only=True)
    workflow = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ("id", "status", "to", "template", "category", "priority", "send_at", "data", "created_at", "deliveries",
                  "workflow")

    @extend_schema_field(_WORKFLOW_RUN_SCHEMA)
    def get_workflow(self, notification) -> dict | None:
        hooks = workflow_hooks()
        return hooks.run_describe(notification) if hooks is not None else None

    def get_status(self, notification) -> str:
        # A workflow's notification with no delivery of its own (its run not at a channel step yet,
        # cancelled before one, or an event that joined another notification's digest): its run says.
        hooks = workflow_hooks()
        if notification.workflow_key and hooks is not None and not notification.deliveries.all():
            return hooks.run_status(notification) or super().get_status(notification)
        return super().get_status(notification)


class NotificationListItemSerializer(_NotificationBaseSerializer):
    deliveries = DeliverySummarySerializer(many=True, read_only=True)

    class Meta:
        model = Notification
        fields = ("id", "status", "to", "template", "category", "priority", "created_at", "deliveries")


class BroadcastAudienceSerializer(serializers.Serializer):
    """Which of the project's users: `{"all": true}`, or filters that all must match."""

    all = serializers.BooleanField(required=False, help_text="Every user of the project.")
    locale = serializers.CharField(required=False, max_length=16, help_text="Users whose locale is exactly this.")
    has_channel = serializers.ChoiceField(choices=["email", "sms", "push"], required=False,
                                          help_text="Users with a contact point on this channel.")

    def to_internal_value(self, data):
        if isinstance(data, dict) and (unknown := sorted(set(data) - set(self.fields))):
            raise serializers.ValidationError({name: "Unknown audience filter." for name in unknown})
        fields = super().to_internal_value(data)
        if fields.get("all") is False or not fields:
            raise serializers.ValidationError('Name a filter, or {"all": true} for every user.')
        if fields.get("all") and len(fields) > 1:
            raise serializers.ValidationError('"all" cannot be combined with a filter.')
        return fields


class BroadcastInputSerializer(_MessageInputSerializer):
    to = serializers.ListField(child=serializers.CharField(max_length=200), required=False, allow_empty=False,
                               max_length=BROADCAST_MAX_TO, help_text="External ids of the users (at most 10,000).")
    audience = BroadcastAudienceSerializer(required=False)
    workflow = serializers.SlugField(
        max_length=100, required=False, help_text="A workflow's key instead of `template`: each user's notification "
                                                  "starts a run of it.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].required = False

    def validate(self, attrs):
        if ("to" in attrs) == ("audience" in attrs):
            raise serializers.ValidationError({"to": 'Give either "to" (a list of users) or "audience" (a filter).'})
        return _template_or_workflow(attrs)


class BroadcastSerializer(serializers.ModelSerializer):
    template = serializers.CharField(source="template.key")
    workflow = serializers.CharField(source="workflow_key", help_text='The workflow\'s key, or "" for a template.')

    class Meta:
        model = Broadcast
        fields = ("id", "status", "template", "workflow", "template_version", "category", "priority", "send_at", "audience",
                  "total",
                  "created",
                  "skipped", "failed", "last_error", "created_at", "started_at", "finished_at")
