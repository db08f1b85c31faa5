from rest_framework import serializers

from apps.projects.models import Project


class ProjectSerializer(serializers.ModelSerializer):
    # Declared without the model's unique validator: a "name already exists" answer would tell any
    # API key holder which other tenants there are. The operator names projects (create_api_key, admin).
    name = serializers.CharField(
        max_length=200, required=False, help_text="Set by the operator; cannot be changed through the API."
    )
    webhook_secret = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=200)

    class Meta:
        model = Project
        fields = ("name", "default_locale", "webhook_url", "webhook_secret", "status_webhook_url")
        extra_kwargs = {
            "status_webhook_url": {"help_text": (
                "Where every delivery status change (sent, delivered, undelivered, failed, dead, cancelled, "
                "skipped) is POSTed, signed with webhook_secret; empty for none. See docs/api.md, Status webhooks."
            )},
        }

    def validate_name(self, value: str) -> str:
        # Sending the current name back (a client PATCHing what GET returned) changes nothing.
        if self.instance is None or value != self.instance.name:
            raise serializers.ValidationError("cannot be changed through the API")
        return value
