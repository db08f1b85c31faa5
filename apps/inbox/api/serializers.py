from rest_framework import serializers

from apps.inbox.models import InboxMessage


class InboxMessageSerializer(serializers.ModelSerializer):
    read = serializers.SerializerMethodField()

    class Meta:
        model = InboxMessage
        fields = ("id", "title", "body", "url", "read", "read_at", "created_at")

    def get_read(self, message) -> bool:
        return message.read_at is not None


class InboxListQuerySerializer(serializers.Serializer):
    unread = serializers.BooleanField(required=False, default=False, help_text="Only the unread messages.")


class InboxCountSerializer(serializers.Serializer):
    count = serializers.IntegerField()


class InboxReadAllSerializer(serializers.Serializer):
    updated = serializers.IntegerField(help_text="How many messages were unread and are now read.")


class InboxTokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()
