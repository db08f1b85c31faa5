"""The inbox, called from the user's browser or app with `Authorization: Bearer <user token>`.

Each view sees only the token's user: another user's message id is a 404, like a missing one.
"""

from drf_spectacular.utils import extend_schema
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import paginated_response
from apps.inbox.api import examples
from apps.inbox.api.serializers import (
    InboxCountSerializer,
    InboxListQuerySerializer,
    InboxMessageSerializer,
    InboxReadAllSerializer,
)
from apps.inbox.authentication import HasInboxToken, UserTokenAuthentication
from apps.inbox.selectors import inbox_list, inbox_message_get, inbox_unread_count
from apps.inbox.services import inbox_message_mark_read, inbox_message_mark_unread, inbox_read_all


class InboxCursorPagination(CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "limit"
    ordering = ("-id",)  # ids only grow: newest first, stable while new messages arrive


class _InboxApi(APIView):
    # User tokens only: an API key is not a credential here, and these classes appear nowhere else.
    authentication_classes = [UserTokenAuthentication]
    permission_classes = [HasInboxToken]


class InboxListApi(_InboxApi):
    pagination_class = InboxCursorPagination  # read by the schema generator: the page shape, `cursor`
    @extend_schema(parameters=[InboxListQuerySerializer], responses=InboxMessageSerializer(many=True),
                   examples=examples.INBOX_LIST)
    def get(self, request):
        query = InboxListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        messages = inbox_list(recipient=request.auth.recipient, **query.validated_data)
        return paginated_response(self, request, messages, serializer_class=InboxMessageSerializer)


class InboxUnreadCountApi(_InboxApi):
    @extend_schema(responses=InboxCountSerializer, examples=examples.INBOX_UNREAD_COUNT)
    def get(self, request):
        return Response({"count": inbox_unread_count(recipient=request.auth.recipient)})


class InboxMessageReadApi(_InboxApi):
    @extend_schema(request=None, responses=InboxMessageSerializer, examples=examples.INBOX_READ)
    def post(self, request, message_id: int):
        message = inbox_message_get(recipient=request.auth.recipient, message_id=message_id)
        return Response(InboxMessageSerializer(inbox_message_mark_read(message=message)).data)


class InboxMessageUnreadApi(_InboxApi):
    @extend_schema(request=None, responses=InboxMessageSerializer, examples=examples.INBOX_UNREAD)
    def post(self, request, message_id: int):
        message = inbox_message_get(recipient=request.auth.recipient, message_id=message_id)
        return Response(InboxMessageSerializer(inbox_message_mark_unread(message=message)).data)


class InboxReadAllApi(_InboxApi):
    @extend_schema(request=None, responses=InboxReadAllSerializer, examples=examples.INBOX_READ_ALL)
    def post(self, request):
        return Response({"updated": inbox_read_all(recipient=request.auth.recipient)})
