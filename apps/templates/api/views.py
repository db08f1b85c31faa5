from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.schema import ERROR_RESPONSES
from apps.templates.api import examples
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
    @extend_schema(request=TemplateInputSerializer, responses={201: TemplateVersionSerializer, 422: ERROR_RESPONSES[422]},
                   examples=examples.TEMPLATE_PUT)
    def put(self, request, key: str):
        serializer = TemplateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = template_version_create(project=request.auth.project, key=key, **serializer.validated_data)
        return Response(TemplateVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: TemplateOutputSerializer, 404: ERROR_RESPONSES[404]}, examples=examples.TEMPLATE_GET)
    def get(self, request, key: str):
        template = template_get(project=request.auth.project, key=key)
        versions = template_versions_latest_per_locale(template=template)
        return Response(TemplateOutputSerializer(template, context={"versions": versions}).data)


class TemplatePreviewApi(APIView):
    @extend_schema(request=TemplatePreviewInputSerializer,
                   responses={200: TemplatePreviewOutputSerializer, 422: ERROR_RESPONSES[422]},
                   examples=examples.TEMPLATE_PREVIEW)
    def post(self, request, key: str):
        """Render the current version with `data`: 422 template_render_error when it cannot be."""
        serializer = TemplatePreviewInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(template_preview(project=request.auth.project, key=key, **serializer.validated_data))
