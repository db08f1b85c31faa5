from django.conf import settings
from rest_framework import serializers

from apps.projects.models import Project


class ProjectSerializer(serializers.ModelSerializer):
    # Declared without the model's unique validator: a "name already exists" answer would tell any
    # API key holder which other tenants there are. The operator names projects (create_api_key, admin).
    name = serializers.CharField(
        max_length=200, required=False, help_text="Set by the operator; cannot be changed through the API."
    )
    webhook_secret = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=200)

    api_rate_limit = serializers.SerializerMethodField(
        help_text="Requests each API key of the project may make (N/s, N/m, N/h, N/d, or off); set by the operator.")

    class Meta:
        model = Project
        fields = ("name", "default_locale", "webhook_url", "webhook_secret", "status_webhook_url", "api_rate_limit")

    def get_api_rate_limit(self, project: Project) -> str:
        return project.api_rate_limit or settings.NOTIFIER_API_RATE_LIMIT or "off"

    def validate_name(self, value: str) -> str:
        # Sending the current name back (a client PATCHing what GET returned) changes nothing.
        if self.instance is None or value != self.instance.name:
            raise serializers.ValidationError("cannot be changed through the API")
        return value
