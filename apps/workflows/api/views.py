from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.schema import ERROR_RESPONSES
from apps.workflows.api import examples
from apps.workflows.api.serializers import WorkflowInputSerializer, WorkflowVersionSerializer
from apps.workflows.selectors import workflow_version_newest
from apps.workflows.services import workflow_version_create


class WorkflowDetailApi(APIView):
    @extend_schema(request=WorkflowInputSerializer,
                   responses={201: WorkflowVersionSerializer, 422: ERROR_RESPONSES[422]}, examples=examples.WORKFLOW_PUT)
    def put(self, request, key: str):
        """Store a new version of the workflow; notifications started from now on run it."""
        serializer = WorkflowInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = workflow_version_create(project=request.auth.project, key=key, **serializer.validated_data)
        return Response(WorkflowVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: WorkflowVersionSerializer, 404: ERROR_RESPONSES[404]}, examples=examples.WORKFLOW_GET)
    def get(self, request, key: str):
        """The newest version."""
        version = workflow_version_newest(project=request.auth.project, key=key)
        return Response(WorkflowVersionSerializer(version).data)
