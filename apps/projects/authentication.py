"""`Authorization: Api-Key <key>`: a key belongs to one project and sees only that project's data."""

from rest_framework import authentication, exceptions, permissions

from apps.projects.models import ApiKey
from apps.projects.selectors import api_key_get_active, api_key_touch

KEYWORD = "Api-Key"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        keyword, _, raw_key = header.partition(" ")
        if keyword != KEYWORD:
            return None  # another scheme (or none): let the permission answer 401
        api_key = api_key_get_active(raw_key=raw_key.strip())
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        api_key_touch(api_key=api_key)
        return (None, api_key)

    def authenticate_header(self, request) -> str:
        # Naming a scheme makes DRF answer 401 (not 403) to a request without credentials.
        return KEYWORD


class HasProjectApiKey(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ApiKey)
