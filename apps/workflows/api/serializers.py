from rest_framework import serializers

from apps.workflows.models import WorkflowVersion


class WorkflowInputSerializer(serializers.Serializer):
    """The shape only: steps and digest are checked by definitions.py, which names each field."""

    template = serializers.SlugField(max_length=100)
    steps = serializers.ListField(
        child=serializers.JSONField(), allow_empty=False, max_length=100,
        help_text='Up to 20, run in order: {"channel": "in_app" | "email" | ..., "if"?: "unread" | "not_delivered"} '
                  'or {"wait": seconds | "10m"} (at most 30 days).',
    )
    digest = serializers.JSONField(
        required=False, allow_null=True, default=None,
        help_text='{"window": seconds | "10m" (at most 7 days), "key"?: data field, "max"?: count}, or '
                  '{"schedule": {"at": "09:00"}, "key"?, "max"?}: daily at that time in the user\'s timezone.',
    )


class WorkflowVersionSerializer(serializers.ModelSerializer):
    key = serializers.CharField(source="workflow.key")
    template = serializers.CharField(source="template.key")

    class Meta:
        model = WorkflowVersion
        fields = ("key", "version", "template", "steps", "digest", "created_at")
