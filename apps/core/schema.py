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
            "200": {"description": "An endless event stream.", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
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
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for operation in operations.values():
            for status in _ERROR_STATUSES:
                if status == "413" and "requestBody" not in operation:
                    continue  # only a body can be too large
                operation.setdefault("responses", {}).setdefault(status, {"$ref": f"#/components/responses/Error{status}"})
    result.setdefault("paths", {})["/api/v1/inbox/stream"] = _STREAM_PATH
    return result
