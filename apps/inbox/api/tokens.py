"""Issuing inbox tokens: called by the tenant's backend with its API key, not by the user."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.inbox.api import examples
from apps.inbox.api.serializers import InboxTokenSerializer
from apps.inbox.tokens import inbox_token_issue
from apps.users.selectors import recipient_get


class RecipientTokenApi(APIView):
    @extend_schema(request=None, responses=InboxTokenSerializer, examples=examples.TOKEN_CREATE)
    def post(self, request, external_id: str):
        """A bearer token opening this user's inbox (and nothing else), for their browser or app."""
        recipient = recipient_get(project=request.auth.project, external_id=external_id)
        token, expires_at = inbox_token_issue(recipient=recipient)
        return Response(InboxTokenSerializer({"token": token, "expires_at": expires_at}).data)
