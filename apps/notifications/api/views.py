from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import CreatedAtCursorPagination, error_body, paginated_response
from apps.core.exceptions import ApplicationError
from apps.core.fields import IdempotencyKeyField, idempotency_key_from_header
from apps.core.schema import ERROR_RESPONSES
from apps.notifications.api import examples
from apps.notifications.api.serializers import (
    BULK_MAX_NOTIFICATIONS,
    NotificationBulkEnvelopeSerializer,
    NotificationBulkItemSerializer,
    NotificationBulkRequestSerializer,
    NotificationBulkResultSerializer,
    NotificationCreatedSerializer,
    NotificationDetailSerializer,
    NotificationInputSerializer,
    NotificationListItemSerializer,
    NotificationListQuerySerializer,
    notification_created_body,
    notification_input_validate,
)
from apps.notifications.intake.selectors import notification_get, notification_list
from apps.notifications.intake.services import (
    NotificationRequest,
    notification_cancel,
    notifications_create,
    request_fingerprint,
)
from apps.projects.throttling import items_rate_limit_cost

IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_key_parameter(thing: str) -> OpenApiParameter:
    return OpenApiParameter(IDEMPOTENCY_HEADER, {"type": "string", "maxLength": IdempotencyKeyField.MAX_LENGTH},
                            OpenApiParameter.HEADER, required=False,
                            description=f"Repeat a request safely: the same key and body return the first {thing}; "
                                        "the same key with another body is a 409. At most "
                                        f"{IdempotencyKeyField.MAX_LENGTH} characters (a longer one is a 400).")


def notification_request_from(fields: dict, *, idempotency_key: str, fingerprint: str) -> NotificationRequest:
    """A validated NotificationInputSerializer's fields as the service takes them."""
    return NotificationRequest(
        to=fields["to"], template_key=fields.get("template", ""), data=fields["data"], channels=fields.get("channels"),
        category=fields["category"], priority=fields["priority"], send_at=fields["send_at"],
        idempotency_key=idempotency_key, fingerprint=fingerprint, template_version=fields["template_version"],
        workflow_key=fields.get("workflow", ""),
    )



# One instance for every single POST: a serializer instance deep-copies its declared fields (DRF),
# which cost a single POST more than validating its body. Validating only reads those fields, so
# the request threads can share it (the bulk view does the same per request).
_NOTIFICATION_INPUT = NotificationInputSerializer()


class NotificationListApi(APIView):
    pagination_class = CreatedAtCursorPagination  # read by the schema generator: the page shape, `cursor`, `limit`
    @extend_schema(
        request=NotificationInputSerializer,
        responses={202: NotificationCreatedSerializer, 422: ERROR_RESPONSES[422]},
        parameters=[idempotency_key_parameter("notification")],
        examples=examples.NOTIFICATION_CREATE,
    )
    def post(self, request):
        # The same ValidationError, and so the same 400, as is_valid(raise_exception=True) raises.
        fields = notification_input_validate(_NOTIFICATION_INPUT, request.data)
        notification_request = notification_request_from(
            fields, idempotency_key=idempotency_key_from_header(request, IDEMPOTENCY_HEADER),
            fingerprint=request_fingerprint(request.data),
        )
        [outcome] = notifications_create(project=request.auth.project, requests=[notification_request])
        if isinstance(outcome, ApplicationError):
            raise outcome
        return Response(notification_created_body(outcome), status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[NotificationListQuerySerializer], responses=NotificationListItemSerializer(many=True),
                   examples=examples.NOTIFICATION_LIST)
    def get(self, request):
        query = NotificationListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        notifications = notification_list(project=request.auth.project, **query.validated_data)
        return paginated_response(self, request, notifications, serializer_class=NotificationListItemSerializer)


class NotificationBulkApi(APIView):
    rate_limit_cost = items_rate_limit_cost("notifications", most=BULK_MAX_NOTIFICATIONS)

    @extend_schema(request=NotificationBulkRequestSerializer, responses={200: NotificationBulkResultSerializer},
                   examples=examples.NOTIFICATION_BULK)
    def post(self, request):
        """Up to 1,000 notifications at once; each item is accepted or refused on its own."""
        envelope = NotificationBulkEnvelopeSerializer(data=request.data)
        envelope.is_valid(raise_exception=True)
        items = envelope.validated_data["notifications"]
        answers: list[dict | None] = [None] * len(items)
        accepted: dict[int, NotificationRequest] = {}
        # One serializer instance for every item: building one per item (DRF deep-copies its
        # fields each time) cost more than the database work of the whole request.
        item_serializer = NotificationBulkItemSerializer()
        for index, item in enumerate(items):
            try:
                fields = item_serializer.run_validation(item)
            except ValidationError as exc:
                answers[index] = error_body("invalid", "The item has invalid fields.", exc.detail)
                continue
            body = {name: value for name, value in item.items() if name != "idempotency_key"}
            accepted[index] = notification_request_from(fields, idempotency_key=fields["idempotency_key"],
                                                        fingerprint=request_fingerprint(body))
        outcomes = notifications_create(project=request.auth.project, requests=list(accepted.values()))
        for index, outcome in zip(accepted, outcomes, strict=True):
            if isinstance(outcome, ApplicationError):
                answers[index] = error_body(outcome.code, outcome.message, outcome.details)
            else:
                answers[index] = notification_created_body(outcome)
        return Response({"results": answers})


class NotificationDetailApi(APIView):
    @extend_schema(responses=NotificationDetailSerializer, examples=examples.NOTIFICATION_DETAIL)
    def get(self, request, notification_id):
        notification = notification_get(project=request.auth.project, notification_id=notification_id)
        return Response(NotificationDetailSerializer(notification).data)


class NotificationCancelApi(APIView):
    @extend_schema(request=None, responses=NotificationDetailSerializer, examples=examples.NOTIFICATION_CANCEL)
    def post(self, request, notification_id):
        notification = notification_cancel(project=request.auth.project, notification_id=notification_id)
        return Response(NotificationDetailSerializer(notification).data)
