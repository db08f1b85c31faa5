from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.schema import ERROR_RESPONSES
from apps.users.api import examples
from apps.users.api.serializers import (
    DeviceInputSerializer,
    DeviceOutputSerializer,
    PreferencesSerializer,
    RecipientInputSerializer,
    RecipientOutputSerializer,
)
from apps.users.selectors import device_get, recipient_get, recipient_preferences
from apps.users.services import (
    device_register,
    device_remove,
    recipient_preferences_set,
    recipient_upsert,
)


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
