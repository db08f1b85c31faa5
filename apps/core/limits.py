"""How large a request body may be, per path: one rule for the ASGI edge and for the JSON parser."""

from django.conf import settings

# Bulk endpoints take up to 1,000 items in one body, so they get their own, larger limit.
BULK_PATHS = frozenset({"/api/v1/notifications/bulk", "/api/v1/users"})


def request_body_limit(*, path: str) -> int:
    """The most bytes a request body to `path` may have."""
    if path.rstrip("/") in BULK_PATHS:
        return settings.NOTIFIER_MAX_BULK_REQUEST_BYTES
    return settings.NOTIFIER_MAX_REQUEST_BYTES


def request_too_large_message(limit: int) -> str:
    return f"The request body is larger than {limit} bytes."
