from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.projects.api.serializers import ProjectSerializer
from apps.projects.services import project_update

POLICY_EXAMPLE = OpenApiExample(
    "The delivery policy",
    value={"critical_categories": ["security", "billing"], "frequency_caps": [
        {"category": "marketing", "limit": 3, "window": "1d", "over_cap": "defer"},
        {"category": "*", "limit": 20, "window": 3600, "over_cap": "skip"},
    ]},
    request_only=True,
)
PROJECT_EXAMPLE = OpenApiExample(
    "A project", response_only=True,
    value={"name": "my-shop", "default_locale": "en", "webhook_url": "https://shop.example/hooks/notifier",
           "status_webhook_url": "", "critical_categories": ["security", "billing"], "frequency_caps": [
               {"category": "marketing", "limit": 3, "window": 86400, "over_cap": "defer"},
               {"category": "*", "limit": 20, "window": 3600, "over_cap": "skip"}]},
)


class ProjectApi(APIView):
    @extend_schema(responses=ProjectSerializer, examples=[PROJECT_EXAMPLE])
    def get(self, request):
        return Response(ProjectSerializer(request.auth.project).data)

    @extend_schema(request=ProjectSerializer, responses=ProjectSerializer, examples=[POLICY_EXAMPLE, PROJECT_EXAMPLE])
    def patch(self, request):
        serializer = ProjectSerializer(request.auth.project, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        project = project_update(project=request.auth.project, **serializer.validated_data)
        return Response(ProjectSerializer(project).data)
