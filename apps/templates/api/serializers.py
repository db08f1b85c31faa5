from rest_framework import serializers

from apps.core.fields import JSONObjectField
from apps.templates.models import Template, TemplateVersion


class EmailPartsSerializer(serializers.Serializer):
    subject = serializers.CharField(max_length=998)
    text = serializers.CharField()
    html = serializers.CharField(required=False)


class SmsPartsSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=1600)


class PushPartsSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(max_length=2000)
    data = JSONObjectField(child=serializers.CharField(allow_blank=True), required=False)


class InAppPartsSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    body = serializers.CharField()
    url = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class TemplateChannelsSerializer(serializers.Serializer):
    email = EmailPartsSerializer(required=False)
    sms = SmsPartsSerializer(required=False)
    push = PushPartsSerializer(required=False)
    in_app = InAppPartsSerializer(required=False)
    webhook = JSONObjectField(required=False, help_text="Any JSON object; its strings are templates.")

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = set(data) - set(self.fields)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown channel."] for name in sorted(unknown)})
        return super().to_internal_value(data)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give the parts of at least one channel.")
        return attrs


class TemplateInputSerializer(serializers.Serializer):
    channels = TemplateChannelsSerializer()
    locale = serializers.RegexField(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$", required=False, max_length=16)
    strict_variables = serializers.BooleanField(
        required=False,
        help_text="true (the default for new templates): a send whose data lacks a variable the template "
                  "uses is a 422 missing_variables; false: missing variables render as empty text. "
                  "Left out, the template keeps its setting.",
    )


class TemplateVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = TemplateVersion
        fields = ("version", "locale", "channels", "variables", "created_at")
        extra_kwargs = {"variables": {"help_text": "Per channel, the top-level data names its parts require."}}


class TemplateOutputSerializer(serializers.ModelSerializer):
    versions = serializers.SerializerMethodField(help_text="The newest version in each locale.")

    class Meta:
        model = Template
        fields = ("key", "strict_variables", "created_at", "versions")

    def get_versions(self, template) -> list[dict]:
        return TemplateVersionSerializer(self.context["versions"], many=True).data


class TemplatePreviewInputSerializer(serializers.Serializer):
    data = JSONObjectField(required=False, default=dict)
    locale = serializers.CharField(required=False, allow_blank=True, max_length=16)
    template_version = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1,
                                                help_text="Preview this version instead of the locale's current one.")


class TemplatePreviewOutputSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    locale = serializers.CharField()
    channels = serializers.DictField(child=serializers.DictField(), help_text="Each channel's parts, rendered.")
    missing_variables = serializers.ListField(
        child=serializers.CharField(),
        help_text="Variables the template uses that `data` lacks (a send of a strict template is refused for them).",
    )
