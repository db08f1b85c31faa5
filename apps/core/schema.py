"""Additions to the generated OpenAPI schema for what drf-spectacular cannot see by itself."""

from drf_spectacular.utils import OpenApiResponse

ERROR_ENVELOPE = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "example": "invalid"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True,
                            "description": "Per-field messages for `invalid`; context for other codes."},
            },
        }
    },
}
# For the operations that can answer 403 (provider signatures), named in their extend_schema.
ERROR_RESPONSE_403 = OpenApiResponse(ERROR_ENVELOPE, description="A missing or wrong signature (`invalid_signature`).")
_ERROR_STATUSES = {
    "400": "Invalid input: malformed JSON (`malformed_request`) or wrong fields (`invalid`).",
    "401": "No credential, or a wrong one.",
    "404": "Not found, or not this project's.",
    "413": "The body is larger than the server reads (`request_too_large`).",
    "422": "Well-formed but cannot be carried out (`unknown_user`, `unknown_template`, …).",
}
# For operations that show an example of an error: a response drf-spectacular knows of can carry one
# (the others get the shared response from add_error_envelope_and_stream below).
ERROR_RESPONSES = {int(status): OpenApiResponse({"$ref": "#/components/schemas/ErrorEnvelope"}, description=description)
                   for status, description in _ERROR_STATUSES.items()}
# The rate per API key (apps/projects/throttling.py): every Api-Key operation may answer it.
_RATE_LIMITED = {
    "description": "Too many requests for this API key (`rate_limited`); retry after `Retry-After` seconds.",
    "headers": {
        "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds until the request would be let through."},
        "RateLimit-Limit": {"schema": {"type": "integer"}, "description": "The key's bucket: requests per period."},
        "RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "Always 0 on a 429."},
        "RateLimit-Reset": {"schema": {"type": "integer"}, "description": "Seconds until the request would be let through."},
    },
    "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ErrorEnvelope"},
        "examples": {"RateLimited": {"value": {"error": {
            "code": "rate_limited", "message": "Too many requests for this API key (100 per 1 s). "
                                               "Expected available in 1 second.", "details": {}}}}},
    }},
}
_STREAM_PATH = {
    "get": {
        "operationId": "inbox_stream",
        "summary": "Server-Sent Events: one `message` event per new in-app message",
        "description": "Each event has `id` (resume with `Last-Event-ID`, header or `?last_event_id=`), "
                       "`event: message` and JSON `data`. Comment lines are heartbeats. Browsers' EventSource "
                       "may pass the token as `?token=`.",
        "tags": ["api"],
        "security": [{"UserToken": []}],
        "parameters": [
            {"name": "token", "in": "query", "required": False, "schema": {"type": "string"}},
            {"name": "last_event_id", "in": "query", "required": False, "schema": {"type": "integer"}},
            {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "integer"}},
        ],
        "responses": {
            "200": {"description": "An endless event stream.", "content": {"text/event-stream": {
                "schema": {"type": "string"},
                "examples": {"TwoMessagesAndAHeartbeat": {"summary": "Two messages and a heartbeat", "value": (
                    'retry: 3000\n\n'
                    'id: 1042\nevent: message\ndata: {"id":1042,"title":"Your order shipped",'
                    '"body":"Order 1234 is on its way.","url":"https://shop.example/o/1234","read":false,'
                    '"read_at":null,"created_at":"2025-01-01T12:00:01.000000Z"}\n\n'
                    ': ping\n\n'
                    'id: 1043\nevent: message\ndata: {"id":1043,"title":"Welcome","body":"Hello Ada.",'
                    '"url":"","read":false,"read_at":null,"created_at":"2025-01-01T12:00:20.000000Z"}\n\n'
                )}},
            }}},
            "400": {"$ref": "#/components/responses/Error400"},
            "401": {"$ref": "#/components/responses/Error401"},
        },
    }
}


def add_error_envelope_and_stream(result, generator, request, public):
    """Document the error envelope on every API operation, and the inbox stream (an async view)."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["ErrorEnvelope"] = ERROR_ENVELOPE
    components.setdefault("responses", {}).update({
        f"Error{status}": {"description": description,
                           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
        for status, description in _ERROR_STATUSES.items()
    })
    components["responses"]["Error429"] = _RATE_LIMITED
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for operation in operations.values():
            if {"ApiKey": []} in operation.get("security", []):
                operation.setdefault("responses", {}).setdefault("429", {"$ref": "#/components/responses/Error429"})
            for status in _ERROR_STATUSES:
                if status == "413" and "requestBody" not in operation:
                    continue  # only a body can be too large
                operation.setdefault("responses", {}).setdefault(status, {"$ref": f"#/components/responses/Error{status}"})
    result.setdefault("paths", {})["/api/v1/inbox/stream"] = _STREAM_PATH
    return result
