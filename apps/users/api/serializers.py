import zoneinfo

import phonenumbers
from rest_framework import serializers

from apps.core.fields import JSONObjectField
from apps.users.models import Device, DevicePlatform, Recipient


class RecipientInputSerializer(serializers.Serializer):
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=20)
    locale = serializers.RegexField(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$", required=False, allow_blank=True, max_length=16)
    timezone = serializers.CharField(required=False, allow_blank=True, max_length=64)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    data = JSONObjectField(required=False)

    def validate_phone(self, value: str) -> str:
        if not value:
            return value
        # E.164 only: a leading + and the country code, so no default region is ever guessed.
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            raise serializers.ValidationError("Enter a phone number in E.164 form, e.g. +14155550123.") from None
        if not value.startswith("+") or not phonenumbers.is_valid_number(number):
            raise serializers.ValidationError("Enter a valid phone number in E.164 form, e.g. +14155550123.")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def validate_timezone(self, value: str) -> str:
        if value and value not in zoneinfo.available_timezones():
            raise serializers.ValidationError(f"Unknown time zone {value!r}; use an IANA name such as Europe/Paris.")
        return value


class DeviceInputSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=512)
    platform = serializers.ChoiceField(choices=DevicePlatform.choices)

    def validate_token(self, value: str) -> str:
        # It travels in the DELETE path, so a token that could not be named there is refused now.
        if "/" in value or any(c.isspace() for c in value):
            raise serializers.ValidationError("A device token has no slashes or spaces.")
        return value


class DeviceOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Device
        fields = ("token", "platform", "active", "created_at", "last_seen_at")


class RecipientOutputSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="external_id")
    devices = DeviceOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Recipient
        fields = ("id", "email", "phone", "locale", "timezone", "name", "data", "devices", "created_at", "updated_at")
