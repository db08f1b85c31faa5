from rest_framework import serializers


class TwilioStatusCallbackSerializer(serializers.Serializer):
    """The fields of Twilio's message status callback that we read (it sends more)."""

    MessageSid = serializers.CharField(max_length=64)
    MessageStatus = serializers.CharField(max_length=32)
    ErrorCode = serializers.CharField(max_length=16, required=False, allow_blank=True, default="")
