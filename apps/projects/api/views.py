from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.schema import ERROR_RESPONSES
from apps.projects.api import examples
from apps.projects.api.serializers import ProjectSerializer
from apps.projects.services import project_update


class ProjectApi(APIView):
    @extend_schema(responses=ProjectSerializer, examples=examples.PROJECT_GET)
    def get(self, request):
        return Response(ProjectSerializer(request.auth.project).data)

    @extend_schema(request=ProjectSerializer, responses={200: ProjectSerializer, 400: ERROR_RESPONSES[400]},
                   examples=examples.PROJECT_PATCH)
    def patch(self, request):
        serializer = ProjectSerializer(request.auth.project, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        project = project_update(project=request.auth.project, actor_label=f"api_key:{request.auth.prefix}",
                                 **serializer.validated_data)
        return Response(ProjectSerializer(project).data)
