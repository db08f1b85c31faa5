"""Examples of the users operations' bodies, for the OpenAPI schema."""

from apps.core.examples import error_example, request_example, response_example

_DEVICE = {"token": "fcm-token-of-adas-phone", "platform": "android", "active": True,
           "created_at": "2025-01-01T11:58:00.000000Z", "last_seen_at": "2025-01-01T11:58:00.000000Z"}
_USER = {"id": "ada", "email": "ada@example.com", "phone": "+14155550123", "locale": "en", "timezone": "Europe/London",
         "name": "Ada", "data": {"plan": "pro"}, "devices": [_DEVICE],
         "created_at": "2025-01-01T11:55:00.000000Z", "updated_at": "2025-01-01T11:58:00.000000Z"}
NO_USER = error_example(404, "not_found", "No user with id 'nobody'.")

USER_PUT = [
    request_example("Contact points and profile", {
        "email": "ada@example.com", "phone": "+14155550123", "locale": "en", "timezone": "Europe/London",
        "name": "Ada", "data": {"plan": "pro"}}),
    response_example("Created", {**_USER, "devices": [], "updated_at": _USER["created_at"]}, status=201),
    response_example("Updated", _USER, status=200),
    error_example(400, "invalid", "The request has invalid fields.",
                  {"phone": ["Enter a possible phone number in E.164 form, e.g. +14155550123."]}),
]
USER_GET = [response_example("A user with one device", _USER), NO_USER]
USER_DELETE = [NO_USER]

DEVICE_POST = [
    request_example("An Android phone's FCM token", {"token": "fcm-token-of-adas-phone", "platform": "android"}),
    response_example("Registered", _DEVICE, status=201),
    response_example("Already registered (seen again)", _DEVICE, status=200),
]
DEVICE_DELETE = [error_example(404, "not_found", "This user has no device with that token.")]

_PREFERENCES = {"channels": {"sms": False}, "categories": {"marketing": {"email": False}, "security": {"sms": True}},
                "quiet_hours": {"start": "22:00", "end": "07:00"},
                # Read-only (the project's, which these settings cannot turn off); ignored in a PUT.
                "critical_categories": ["security"]}
PREFERENCES_GET = [response_example("No SMS except security codes, no marketing email, quiet at night", _PREFERENCES)]
PREFERENCES_PUT = [
    request_example("No SMS except security codes, no marketing email, quiet at night", _PREFERENCES),
    response_example("Saved (the whole, as a later GET returns it)", _PREFERENCES),
]

USERS_BULK_PUT = [
    request_example("Two users, one invalid", {"users": [
        {"external_id": "ada", "email": "ada@example.com", "locale": "en"},
        {"external_id": "bob", "phone": "12"},
    ]}),
    response_example("One upserted, one refused", {"results": [
        {"id": "ada", "email": "ada@example.com", "phone": "", "locale": "en", "timezone": "", "name": "",
         "data": {}, "devices": [], "created_at": "2026-11-30T09:00:00Z", "updated_at": "2026-11-30T09:00:00Z"},
        {"error": {"code": "invalid", "message": "The item has invalid fields.",
                   "details": {"phone": ["Enter a possible phone number in E.164 form, e.g. +14155550123."]}}},
    ]}),
]
