"""`Authorization: Bearer <user token>` for the inbox endpoints, and only for them.

The two credentials never cross: inbox views list only this class (an API key is ignored there,
so it gets a 401), and API-key views list only ApiKeyAuthentication (a user token gets a 401).
"""

from rest_framework import authentication, exceptions, permissions

from apps.inbox.tokens import InboxAccess, InvalidInboxToken, inbox_token_authenticate

KEYWORD = "Bearer"


def bearer_token(authorization: str) -> str:
    """The token of an `Authorization: Bearer <token>` header value, "" for any other scheme."""
    keyword, _, token = authorization.partition(" ")
    return token.strip() if keyword.lower() == KEYWORD.lower() else ""


class UserTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        token = bearer_token(header)
        if not token:
            return None
        try:
            return (None, inbox_token_authenticate(token=token))
        except InvalidInboxToken as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None

    def authenticate_header(self, request) -> str:
        return KEYWORD  # makes DRF answer 401, not 403, when the token is missing


class HasInboxToken(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, InboxAccess)
