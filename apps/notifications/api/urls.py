from django.urls import path

from apps.notifications.api.broadcasts import BroadcastCancelApi, BroadcastDetailApi, BroadcastListApi
from apps.notifications.api.providers import TwilioStatusCallbackApi
from apps.notifications.api.views import (
    NotificationBulkApi,
    NotificationCancelApi,
    NotificationDetailApi,
    NotificationListApi,
)

urlpatterns = [
    path("notifications", NotificationListApi.as_view(), name="notification-list"),
    path("notifications/bulk", NotificationBulkApi.as_view(), name="notification-bulk"),
    path("notifications/<uuid:notification_id>", NotificationDetailApi.as_view(), name="notification-detail"),
    path("notifications/<uuid:notification_id>/cancel", NotificationCancelApi.as_view(), name="notification-cancel"),
    path("broadcasts", BroadcastListApi.as_view(), name="broadcast-list"),
    path("broadcasts/<uuid:broadcast_id>", BroadcastDetailApi.as_view(), name="broadcast-detail"),
    path("broadcasts/<uuid:broadcast_id>/cancel", BroadcastCancelApi.as_view(), name="broadcast-cancel"),
    path("providers/twilio/status", TwilioStatusCallbackApi.as_view(), name="twilio-status-callback"),
]
