from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.fields import idempotency_key_from_header
from apps.notifications.api import examples
from apps.notifications.api.serializers import BroadcastInputSerializer, BroadcastSerializer
from apps.notifications.api.views import IDEMPOTENCY_HEADER, idempotency_key_parameter
from apps.notifications.intake.broadcasts import BROADCAST_MAX_TO, broadcast_cancel, broadcast_create, broadcast_get
from apps.notifications.intake.services import request_fingerprint
from apps.projects.throttling import items_rate_limit_cost


class BroadcastListApi(APIView):
    # One per user of a `to` list; an audience costs 1 here and pays per user as it fans out.
    rate_limit_cost = items_rate_limit_cost("to", most=BROADCAST_MAX_TO)

    @extend_schema(
        request=BroadcastInputSerializer,
        responses={202: BroadcastSerializer},
        parameters=[idempotency_key_parameter("broadcast")],
        examples=examples.BROADCAST_CREATE,
    )
    def post(self, request):
        """Send a template to a list of users or to an audience; the fan-out runs in the background."""
        serializer = BroadcastInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        broadcast, _ = broadcast_create(
            project=request.auth.project, template_key=fields.get("template", ""), workflow_key=fields.get("workflow", ""),
            data=fields["data"],
            template_version=fields["template_version"],
            channels=fields.get("channels"), category=fields["category"], priority=fields["priority"],
            send_at=fields["send_at"], to=fields.get("to"), audience=fields.get("audience"),
            idempotency_key=idempotency_key_from_header(request, IDEMPOTENCY_HEADER),
            fingerprint=request_fingerprint(request.data), api_key=request.auth,
        )
        return Response(BroadcastSerializer(broadcast).data, status=status.HTTP_202_ACCEPTED)


class BroadcastDetailApi(APIView):
    @extend_schema(responses=BroadcastSerializer, examples=examples.BROADCAST_DETAIL)
    def get(self, request, broadcast_id):
        """Progress: how many users are counted, notified and skipped so far."""
        return Response(BroadcastSerializer(broadcast_get(project=request.auth.project, broadcast_id=broadcast_id)).data)


class BroadcastCancelApi(APIView):
    @extend_schema(request=None, responses=BroadcastSerializer, examples=examples.BROADCAST_CANCEL)
    def post(self, request, broadcast_id):
        """Stop the fan-out and cancel its deliveries not yet being sent."""
        broadcast = broadcast_cancel(project=request.auth.project, broadcast_id=broadcast_id)
        return Response(BroadcastSerializer(broadcast).data)
