from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.templates.api.serializers import (
    TemplateInputSerializer,
    TemplateOutputSerializer,
    TemplatePreviewInputSerializer,
    TemplatePreviewOutputSerializer,
    TemplateVersionSerializer,
)
from apps.templates.selectors import template_get, template_versions_latest_per_locale
from apps.templates.services import template_preview, template_version_create


class TemplateDetailApi(APIView):
    @extend_schema(
        request=TemplateInputSerializer, responses={201: TemplateVersionSerializer},
        examples=[
            OpenApiExample("A French version, lenient about missing variables", request_only=True, value={
                "locale": "fr", "strict_variables": False,
                "channels": {"email": {"subject": "Bonjour {{ name }}", "text": "{% if code %}Code : {{ code }}{% endif %}"}},
            }),
            OpenApiExample("The version", response_only=True, status_codes=["201"], value={
                "version": 3, "locale": "fr", "variables": {"email": ["name"]},
                "channels": {"email": {"subject": "Bonjour {{ name }}", "text": "{% if code %}Code : {{ code }}{% endif %}"}},
                "created_at": "2026-11-30T09:00:00Z",
            }),
        ],
    )
    def put(self, request, key: str):
        serializer = TemplateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = template_version_create(project=request.auth.project, key=key, **serializer.validated_data)
        return Response(TemplateVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=TemplateOutputSerializer)
    def get(self, request, key: str):
        template = template_get(project=request.auth.project, key=key)
        versions = template_versions_latest_per_locale(template=template)
        return Response(TemplateOutputSerializer(template, context={"versions": versions}).data)


class TemplatePreviewApi(APIView):
    @extend_schema(
        request=TemplatePreviewInputSerializer, responses=TemplatePreviewOutputSerializer,
        examples=[
            OpenApiExample("Preview for a Canadian French user", request_only=True,
                           value={"locale": "fr-CA", "data": {"code": "123456"}}),
            OpenApiExample("Rendered, with what the data lacks", response_only=True, status_codes=["200"], value={
                "version": 3, "locale": "fr", "missing_variables": ["name"],
                "channels": {"email": {"subject": "Bonjour ", "text": "Code : 123456"}},
            }),
        ],
    )
    def post(self, request, key: str):
        """Render the current version with `data`: 422 template_render_error when it cannot be."""
        serializer = TemplatePreviewInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(template_preview(project=request.auth.project, key=key, **serializer.validated_data))
