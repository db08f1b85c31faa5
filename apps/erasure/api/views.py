from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from apps.core.schema import ERROR_RESPONSES
from apps.erasure.services import recipient_erase
from apps.users.api import examples
from apps.users.api.views import RecipientDetailApi as UserDetailApi
from apps.users.selectors import recipient_get


# `/users/{external_id}`: the users app's PUT and GET, and DELETE, which erases the user from every
# app holding their data. (Comments, not docstrings: the schema would show them on every method.)
class RecipientDetailApi(UserDetailApi):
    @extend_schema(responses={204: None, 404: ERROR_RESPONSES[404]}, examples=examples.USER_DELETE)
    def delete(self, request, external_id: str):
        recipient = recipient_get(project=request.auth.project, external_id=external_id)
        recipient_erase(recipient=recipient, actor_label=f"api_key:{request.auth.prefix}")
        return Response(status=status.HTTP_204_NO_CONTENT)
