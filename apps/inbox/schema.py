"""How the OpenAPI schema describes the inbox's credential (drf-spectacular finds it on import)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class UserTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.inbox.authentication.UserTokenAuthentication"
    name = "UserToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A user's inbox token from POST /api/v1/users/{id}/token.",
        }
