from django.urls import path

from apps.core import converters  # noqa: F401  (registers <external_id:>)
from apps.inbox.api.stream import inbox_stream
from apps.inbox.api.tokens import RecipientTokenApi
from apps.inbox.api.views import (
    InboxListApi,
    InboxMessageReadApi,
    InboxMessageUnreadApi,
    InboxReadAllApi,
    InboxUnreadCountApi,
)

urlpatterns = [
    path("users/<external_id:external_id>/token", RecipientTokenApi.as_view(), name="user-token"),
    path("inbox", InboxListApi.as_view(), name="inbox-list"),
    path("inbox/unread-count", InboxUnreadCountApi.as_view(), name="inbox-unread-count"),
    path("inbox/read-all", InboxReadAllApi.as_view(), name="inbox-read-all"),
    path("inbox/stream", inbox_stream, name="inbox-stream"),
    path("inbox/<int:message_id>/read", InboxMessageReadApi.as_view(), name="inbox-message-read"),
    path("inbox/<int:message_id>/unread", InboxMessageUnreadApi.as_view(), name="inbox-message-unread"),
]
