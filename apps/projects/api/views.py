from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.projects.api.serializers import ProjectSerializer
from apps.projects.services import project_update


class ProjectApi(APIView):
    @extend_schema(responses=ProjectSerializer)
    def get(self, request):
        return Response(ProjectSerializer(request.auth.project).data)

    @extend_schema(request=ProjectSerializer, responses=ProjectSerializer)
    def patch(self, request):
        serializer = ProjectSerializer(request.auth.project, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        project = project_update(project=request.auth.project, **serializer.validated_data)
        return Response(ProjectSerializer(project).data)
