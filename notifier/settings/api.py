"""The API: what one request may ask (body sizes, how far ahead a send may be, the rate per API key)
and how Django REST framework answers. Imported by base.py.
"""

from notifier.settings.environment import env

# The largest request body the API reads (a template with its HTML is the largest legitimate one).
# Refused with a 413 at the ASGI edge, before the body is read or the caller authenticated
# (apps/core/asgi.py), so no caller can make the web process buffer more than this.
NOTIFIER_MAX_REQUEST_BYTES = env.int("NOTIFIER_MAX_REQUEST_BYTES", default=1024 * 1024)
# The bulk endpoints (POST /api/v1/notifications/bulk, PUT /api/v1/users) take up to 1,000 items:
# about 10 KiB each, far more than a real notification or user needs.
NOTIFIER_MAX_BULK_REQUEST_BYTES = env.int("NOTIFIER_MAX_BULK_REQUEST_BYTES", default=10 * 1024 * 1024)
# Bodies Django reads itself: DRF reads a JSON body through request.body, which refuses anything
# over this before our parser can apply the path's own limit (apps/core/limits.py), so it must be
# the larger of the two or the bulk endpoints stop at 1 MiB. The per-path limits still hold: the
# ASGI edge refuses by Content-Length before reading, and the JSON parser after. Form bodies (the
# admin) get a 413 envelope past it.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(NOTIFIER_MAX_REQUEST_BYTES, NOTIFIER_MAX_BULK_REQUEST_BYTES)
# How far ahead a notification's send_at may be (a 400 beyond): a year covers any reminder.
NOTIFIER_MAX_SEND_AT_DAYS = env.int("NOTIFIER_MAX_SEND_AT_DAYS", default=365)
# Requests per API key (apps/projects/throttling.py): N/s, N/m, N/h or N/d, or `off`; a project's
# own `api_rate_limit` (set in the admin) overrides it. A bucket of N refilling over the period,
# shared by every web process through Redis (each process its own without REDIS_URL).
# 1,000 a second per key: the throughput an installation of the documented size is built for
# (docs/performance.md), so one key can use all of it but cannot queue work faster than it drains.
NOTIFIER_API_RATE_LIMIT = env("NOTIFIER_API_RATE_LIMIT", default="1000/s")
# How long a process trusts the API key (and its project) it last read: a key revoked elsewhere is
# refused within this (apps/projects/key_cache.py). 0 reads the key on every request.
NOTIFIER_API_KEY_CACHE_SECONDS = env.float("NOTIFIER_API_KEY_CACHE_SECONDS", default=5.0)

CSRF_FAILURE_VIEW = "apps.core.api.csrf_failure_view"
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.projects.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.projects.authentication.HasProjectApiKey"],
    "DEFAULT_THROTTLE_CLASSES": ["apps.projects.throttling.ApiKeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.JSONParser"],  # a too-deep body is a 400, not a 500
    # DRF's negotiation, skipped for the Accept headers whose answer is JSON anyway.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "apps.core.negotiation.JsonFirstContentNegotiation",
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Notifier API",
    "DESCRIPTION": "Send notifications by email, SMS, push, in-app inbox and webhooks.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.schema.add_error_envelope_and_stream",
    ],
    # A broadcast's status and a delivery's are both "status": name each set.
    "ENUM_NAME_OVERRIDES": {
        "BroadcastStatusEnum": "apps.notifications.models.BroadcastStatus.choices",
        "DeliveryStatusEnum": "apps.notifications.models.DeliveryStatus.choices",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}
