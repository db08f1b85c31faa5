from django.urls import path

from apps.core import converters  # noqa: F401  (registers <external_id:> and <device_token:>)
from apps.users.api.views import (
    DeviceDetailApi,
    DeviceListApi,
    RecipientBulkApi,
    RecipientPreferencesApi,
)

urlpatterns = [
    path("users", RecipientBulkApi.as_view(), name="user-bulk"),
    path("users/<external_id:external_id>/devices", DeviceListApi.as_view(), name="user-device-list"),
    path("users/<external_id:external_id>/devices/<device_token:token>", DeviceDetailApi.as_view(),
         name="user-device-detail"),
    path("users/<external_id:external_id>/preferences", RecipientPreferencesApi.as_view(), name="user-preferences"),
]
