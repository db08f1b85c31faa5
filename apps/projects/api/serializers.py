from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.projects.models import Project
from apps.projects.policy import (
    MAX_CAP_LIMIT,
    MAX_WINDOW_SECONDS,
    OVER_CAP_CHOICES,
    critical_categories_clean,
    frequency_caps_clean,
)


@extend_schema_field({"oneOf": [
    {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW_SECONDS},
    {"type": "string", "pattern": r"^[0-9]+[smhd]$", "example": "1h"},
]})
class WindowField(serializers.IntegerField):
    """Documents that a window is given in seconds or as a duration; frequency_caps_clean reads it."""


class FrequencyCapSerializer(serializers.Serializer):
    """The documented shape of one cap (FrequencyCapsField validates the list)."""

    category = serializers.CharField(max_length=100, help_text='A category, or "*" for all of them.')
    limit = serializers.IntegerField(min_value=1, max_value=MAX_CAP_LIMIT,
                                     help_text="At most this many notifications per user in the window.")
    window = WindowField(
        min_value=1, max_value=MAX_WINDOW_SECONDS,
        help_text='The window in seconds. Accepted as seconds or a duration ("90s", "15m", "1h", "1d"); '
                  "answered in seconds.",
    )
    over_cap = serializers.ChoiceField(choices=OVER_CAP_CHOICES, default="defer",
                                       help_text="defer: held `pending` until the window allows; skip: `skipped`.")


@extend_schema_field(FrequencyCapSerializer(many=True))
class FrequencyCapsField(serializers.JSONField):
    def to_internal_value(self, data):
        try:
            return frequency_caps_clean(data)
        except ValueError as exc:
            # Each field's messages as a list, as DRF gives them everywhere else.
            raise serializers.ValidationError({
                key: {field: [message] for field, message in problems.items()} if isinstance(problems, dict)
                else [problems]
                for key, problems in exc.args[0].items()
            }) from exc


@extend_schema_field(serializers.ListField(child=serializers.CharField(max_length=100)))
class CriticalCategoriesField(serializers.JSONField):
    def to_internal_value(self, data):
        try:
            return critical_categories_clean(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class ProjectSerializer(serializers.ModelSerializer):
    # Declared without the model's unique validator: a "name already exists" answer would tell any
    # API key holder which other tenants there are. The operator names projects (create_api_key, admin).
    name = serializers.CharField(
        max_length=200, required=False, help_text="Set by the operator; cannot be changed through the API."
    )
    webhook_secret = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=200,
        help_text="Signs webhooks and status webhooks (docs/api.md, Signatures). Setting a new one rotates: "
                  "the replaced one signs too until webhook_secret_previous_until.",
    )
    webhook_secret_previous_until = serializers.DateTimeField(
        read_only=True, allow_null=True,
        help_text="When the webhook_secret replaced last stops (or stopped) signing beside the current one; "
                  "null when none was replaced.",
    )
    critical_categories = CriticalCategoriesField(
        required=False,
        help_text="Categories the users' preferences cannot turn off (e.g. security, billing); "
                  "they are also exempt from frequency caps.",
    )
    frequency_caps = FrequencyCapsField(
        required=False,
        help_text="At most `limit` notifications per user per `category` (\"*\": all) in `window` seconds; "
                  "`priority: high` and critical categories are exempt.",
    )

    api_rate_limit = serializers.SerializerMethodField(
        help_text="Requests each API key of the project may make (N/s, N/m, N/h, N/d, or off); set by the operator.")

    class Meta:
        model = Project
        fields = ("name", "default_locale", "webhook_url", "webhook_secret", "webhook_secret_previous_until",
                  "status_webhook_url", "api_rate_limit", "critical_categories", "frequency_caps")
        extra_kwargs = {
            "status_webhook_url": {"help_text": (
                "Where every delivery status change (sent, delivered, undelivered, failed, dead, cancelled, "
                "skipped) is POSTed, signed with webhook_secret; empty for none. See docs/api.md, Status webhooks."
            )},
        }

    def get_api_rate_limit(self, project: Project) -> str:
        return project.api_rate_limit or settings.NOTIFIER_API_RATE_LIMIT or "off"

    def validate_name(self, value: str) -> str:
        # Sending the current name back (a client PATCHing what GET returned) changes nothing.
        if self.instance is None or value != self.instance.name:
            raise serializers.ValidationError("cannot be changed through the API")
        return value
