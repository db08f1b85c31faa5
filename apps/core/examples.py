"""Helpers for the OpenAPI examples every operation carries (drf-spectacular's OpenApiExample)."""

from drf_spectacular.utils import OpenApiExample


def request_example(summary: str, value, *, name: str = "", media_type: str | None = None) -> OpenApiExample:
    return OpenApiExample(name or summary, value=value, summary=summary, request_only=True, media_type=media_type)


def response_example(summary: str, value, *, status: int = 200, name: str = "") -> OpenApiExample:
    return OpenApiExample(name or summary, value=value, summary=summary, response_only=True,
                          status_codes=[str(status)])


def error_example(status: int, code: str, message: str, details: dict | None = None) -> OpenApiExample:
    """An error envelope as the operation answers it."""
    return response_example(f"{status} {code}", {"error": {"code": code, "message": message, "details": details or {}}},
                            status=status)
