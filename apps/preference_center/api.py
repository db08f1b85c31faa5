"""POST /api/v1/users/{external_id}/preferences-link: the product's backend asks (with its API key)
for a link to the user's preference page, to show in its own settings screen or messages."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.examples import error_example, response_example
from apps.core.schema import ERROR_RESPONSES
from apps.users.preference_links import preferences_link_issue
from apps.users.selectors import recipient_get


class PreferencesLinkSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="The page, under PUBLIC_BASE_URL; the link is its own credential.")
    expires_at = serializers.DateTimeField(help_text="When the link stops working (NOTIFIER_PREFERENCES_LINK_TTL_SECONDS).")


_EXAMPLES = [
    response_example("A link to the user's preference page", {
        "url": "https://notifier.example.com/preferences/eyJwIjoxLCJyIjo0MiwiZSI6MTczODQxMDQwMH0:q2Vt9x",
        "expires_at": "2025-02-01T12:00:00Z"}),
    error_example(404, "not_found", "No user with id 'nobody'."),
]


class PreferencesLinkApi(APIView):
    @extend_schema(request=None, responses={200: PreferencesLinkSerializer, 404: ERROR_RESPONSES[404]},
                   examples=_EXAMPLES)
    def post(self, request, external_id: str):
        """A signed, expiring link to the page where the user sets their own preferences, without logging in."""
        recipient = recipient_get(project=request.auth.project, external_id=external_id)
        url, expires_at = preferences_link_issue(project_id=recipient.project_id, recipient_id=recipient.id,
                                                 base_url=request.build_absolute_uri("/"))
        return Response(PreferencesLinkSerializer({"url": url, "expires_at": expires_at}).data)
