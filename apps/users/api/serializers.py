import zoneinfo

import phonenumbers
from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.fields import JSONObjectField
from apps.users.models import CATEGORY_MAX_LENGTH, Device, DevicePlatform, Recipient


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
        # A *possible* number (a known country code, a length its plan allows) is accepted, not only
        # one the numbering plan lists as assigned: providers' documented and test numbers
        # (+15005550006, +15558675310) are fictional ranges, and plans change faster than the
        # library. Whether a number is reachable is the provider's answer, recorded on the delivery.
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            raise serializers.ValidationError("Enter a phone number in E.164 form, e.g. +14155550123.") from None
        if not value.startswith("+") or not phonenumbers.is_possible_number(number):
            raise serializers.ValidationError("Enter a possible phone number in E.164 form, e.g. +14155550123.")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def validate_timezone(self, value: str) -> str:
        if value and value not in zoneinfo.available_timezones():
            raise serializers.ValidationError(f"Unknown time zone {value!r}; use an IANA name such as Europe/Paris.")
        return value


# As POST /notifications/bulk: large enough to amortise the round trips, small enough to answer fast.
BULK_MAX_USERS = 1000


class RecipientBulkItemSerializer(RecipientInputSerializer):
    # What the path of PUT /users/{external_id} accepts (apps/core/converters.py).
    external_id = serializers.RegexField(r"\A[^/\x00]{1,200}\Z", max_length=200,
                                         error_messages={"invalid": "At most 200 characters, without / or NUL."})


class RecipientBulkEnvelopeSerializer(serializers.Serializer):
    """The envelope only: each item is validated on its own, so one bad item is that item's error."""

    users = serializers.ListField(child=serializers.JSONField(), allow_empty=False, max_length=BULK_MAX_USERS)


class RecipientBulkRequestSerializer(serializers.Serializer):
    """The documented shape of the bulk request (RecipientBulkEnvelopeSerializer validates it)."""

    users = serializers.ListField(child=RecipientBulkItemSerializer(), max_length=BULK_MAX_USERS)


@extend_schema_field({"oneOf": [{"$ref": "#/components/schemas/RecipientOutput"},
                               {"$ref": "#/components/schemas/ErrorEnvelope"}]})
class _BulkResultField(serializers.DictField):
    pass


class RecipientBulkResultSerializer(serializers.Serializer):
    results = serializers.ListField(
        child=_BulkResultField(),
        help_text="One per item, in order: the user as PUT /users/{external_id} answers it, or that item's error envelope.",
    )


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


class StrictBooleanField(serializers.BooleanField):
    """true or false, nothing else: DRF's BooleanField would also take "yes", "off", 0 or 1."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


def _channel_switches(value: dict, *, where: str) -> dict:
    unknown = sorted(set(value) - set(settings.NOTIFICATION_CHANNELS))
    if unknown:
        raise serializers.ValidationError(
            f"Unknown channel(s) {', '.join(map(repr, unknown))} {where}; "
            f"channels are {', '.join(settings.NOTIFICATION_CHANNELS)}."
        )
    return value


class QuietHoursSerializer(serializers.Serializer):
    start = serializers.TimeField(format="%H:%M", input_formats=["%H:%M"], help_text="HH:MM in the user's time zone")
    end = serializers.TimeField(format="%H:%M", input_formats=["%H:%M"], help_text="HH:MM; before start wraps midnight")

    def validate(self, attrs):
        if attrs["start"] == attrs["end"]:
            raise serializers.ValidationError("start and end must differ.")
        return attrs


class PreferencesSerializer(serializers.Serializer):
    """The whole of a user's preferences: a PUT replaces them, and what it leaves out is reset."""

    MAX_CATEGORIES = 200

    channels = serializers.DictField(child=StrictBooleanField(), required=False, default=dict,
                                     help_text='Channels the user takes, e.g. {"sms": false}; unnamed ones: yes.')
    # JSONObjectField: its keys are the user's category names, which jsonb must be able to store.
    categories = JSONObjectField(
        child=serializers.DictField(child=StrictBooleanField()), required=False, default=dict,
        help_text='Per category, overriding `channels`, e.g. {"marketing": {"email": false}}.',
    )
    quiet_hours = QuietHoursSerializer(required=False, allow_null=True, default=None)
    critical_categories = serializers.ListField(
        child=serializers.CharField(), read_only=True,
        help_text="The project's critical categories: the settings above do not apply to them (they are "
                  "always sent on the channels asked for); set on the project, ignored in a PUT.",
    )

    def validate_channels(self, value: dict) -> dict:
        return _channel_switches(value, where="in channels")

    def validate_categories(self, value: dict) -> dict:
        if len(value) > self.MAX_CATEGORIES:
            raise serializers.ValidationError(f"At most {self.MAX_CATEGORIES} categories.")
        category_name = serializers.CharField(max_length=CATEGORY_MAX_LENGTH)
        for category, switches in value.items():
            category_name.run_validation(category)
            _channel_switches(switches, where=f"in categories[{category!r}]")
        return value
