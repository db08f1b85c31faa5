from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import error_body
from apps.core.schema import ERROR_RESPONSES
from apps.projects.throttling import items_rate_limit_cost
from apps.users.api import examples
from apps.users.api.serializers import (
    BULK_MAX_USERS,
    DeviceInputSerializer,
    DeviceOutputSerializer,
    PreferencesSerializer,
    RecipientBulkEnvelopeSerializer,
    RecipientBulkItemSerializer,
    RecipientBulkRequestSerializer,
    RecipientBulkResultSerializer,
    RecipientInputSerializer,
    RecipientOutputSerializer,
)
from apps.users.selectors import device_get, recipient_get, recipient_preferences
from apps.users.services import (
    device_register,
    device_remove,
    recipient_preferences_set,
    recipient_upsert,
    recipients_upsert,
)


class RecipientBulkApi(APIView):
    rate_limit_cost = items_rate_limit_cost("users", most=BULK_MAX_USERS)

    @extend_schema(
        operation_id="v1_users_bulk_upsert",
        request=RecipientBulkRequestSerializer,
        responses={200: RecipientBulkResultSerializer, 400: ERROR_RESPONSES[400]},
        examples=examples.USERS_BULK_PUT,
    )
    def put(self, request):
        """Upsert up to 1,000 users at once, each as PUT /users/{external_id}; one bad item never stops the others."""
        envelope = RecipientBulkEnvelopeSerializer(data=request.data)
        envelope.is_valid(raise_exception=True)
        items = envelope.validated_data["users"]
        answers: list[dict | None] = [None] * len(items)
        accepted: dict[int, tuple[str, dict]] = {}
        item_serializer = RecipientBulkItemSerializer()  # one instance: building one per item costs more than the work
        for index, item in enumerate(items):
            try:
                fields = dict(item_serializer.run_validation(item))
            except ValidationError as exc:
                answers[index] = error_body("invalid", "The item has invalid fields.", exc.detail)
                continue
            accepted[index] = (fields.pop("external_id"), fields)
        upserted = recipients_upsert(project=request.auth.project, items=list(accepted.values()))
        output = RecipientOutputSerializer()
        for index, (recipient, _) in zip(accepted, upserted, strict=True):
            answers[index] = output.to_representation(recipient)
        return Response({"results": answers})


# PUT and GET; DELETE (erasure, which reaches the apps above this one) is added by apps/erasure.
class RecipientDetailApi(APIView):
    @extend_schema(request=RecipientInputSerializer, responses={200: RecipientOutputSerializer, 201: RecipientOutputSerializer,
                                                        400: ERROR_RESPONSES[400]},
                   examples=examples.USER_PUT)
    def put(self, request, external_id: str):
        serializer = RecipientInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        recipient, created = recipient_upsert(
            project=request.auth.project, external_id=external_id, **serializer.validated_data
        )
        return Response(
            RecipientOutputSerializer(recipient).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(responses={200: RecipientOutputSerializer, 404: ERROR_RESPONSES[404]}, examples=examples.USER_GET)
    def get(self, request, external_id: str):
        recipient = recipient_get(project=request.auth.project, external_id=external_id)
        return Response(RecipientOutputSerializer(recipient).data)


class DeviceListApi(APIView):
    @extend_schema(request=DeviceInputSerializer, responses={201: DeviceOutputSerializer, 200: DeviceOutputSerializer},
                   examples=examples.DEVICE_POST)
    def post(self, request, external_id: str):
        """Register a push token for the user: 201 when new, 200 when known (re-activated if it was not)."""
        serializer = DeviceInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        recipient = recipient_get(project=request.auth.project, external_id=external_id)
        device, created = device_register(recipient=recipient, **serializer.validated_data)
        return Response(
            DeviceOutputSerializer(device).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class DeviceDetailApi(APIView):
    @extend_schema(responses={204: None, 404: ERROR_RESPONSES[404]}, examples=examples.DEVICE_DELETE)
    def delete(self, request, external_id: str, token: str):
        recipient = recipient_get(project=request.auth.project, external_id=external_id)
        device_remove(device=device_get(recipient=recipient, token=token))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RecipientPreferencesApi(APIView):
    @extend_schema(responses=PreferencesSerializer, examples=examples.PREFERENCES_GET)
    def get(self, request, external_id: str):
        recipient = recipient_get(project=request.auth.project, external_id=external_id)
        return Response(PreferencesSerializer(recipient_preferences(recipient=recipient)).data)

    @extend_schema(request=PreferencesSerializer, responses=PreferencesSerializer, examples=examples.PREFERENCES_PUT)
    def put(self, request, external_id: str):
        """Replace the user's preferences (what the body leaves out is reset to its default)."""
        serializer = PreferencesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        recipient = recipient_get(project=request.auth.project, external_id=external_id)
        recipient_preferences_set(recipient=recipient, **serializer.validated_data)
        return Response(PreferencesSerializer(recipient_preferences(recipient=recipient)).data)
