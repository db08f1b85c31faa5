"""What every API view shares: the error envelope and cursor pagination."""

import logging
import sys

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.exceptions import ApplicationError

logger = logging.getLogger(__name__)

# DRF's exception classes, named by the code our clients switch on.
_DRF_ERROR_CODES = {
    drf_exceptions.ParseError: "malformed_request",
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.AuthenticationFailed: "authentication_failed",
    drf_exceptions.PermissionDenied: "permission_denied",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "rate_limited",
    drf_exceptions.ValidationError: "invalid",
}


# What Django raises when PostgreSQL refuses or drops us (too many clients, connection refused,
# "not accepting connections", a session terminated, the pool's wait for a connection timing out)
# and for the other conditions a retry can outlive (statement timeout, deadlock). No request
# input can cause these, so they are the server's temporary trouble: a 503, never a 500.
DATABASE_UNAVAILABLE_ERRORS = (OperationalError, InterfaceError)


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def database_unavailable_response(exc: BaseException, *, response_class=JsonResponse):
    """The 503 a request gets when the database is out of reach; what was not accepted can be retried."""
    logger.warning("Database unavailable: %s: %s", type(exc).__name__, exc)
    retry_after = settings.NOTIFIER_DB_UNAVAILABLE_RETRY_AFTER_SECONDS
    body = error_body("database_unavailable", "The database is unavailable; retry the request later.",
                      {"retry_after": retry_after})
    response = response_class(body, status=503)
    response["Retry-After"] = str(retry_after)
    return response


def exception_handler(exc, context):
    """Render every API error as `{"error": {"code", "message", "details"}}`."""
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, DATABASE_UNAVAILABLE_ERRORS):
        return database_unavailable_response(exc, response_class=Response)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 handling and logging take over

    code = next((c for cls, c in _DRF_ERROR_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, drf_exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        message = "The request has invalid fields."
    else:
        details = {}
        message = str(exc.detail)
    response.data = error_body(code, message, details)
    for name, value in getattr(exc, "headers", {}).items():  # e.g. a 429's RateLimit-* headers
        response[name] = value
    return response


# Django's own error views answer HTML; these keep every answer, API or not, in the envelope
# (notifier/urls.py names them as handler400/403/404/500, settings as CSRF_FAILURE_VIEW).

def bad_request_view(request, exception=None):
    """A request Django refused before any view: a bad Host header, too many query or form fields,
    a form body over DATA_UPLOAD_MAX_MEMORY_SIZE (that one is a 413)."""
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(error_body("request_too_large", "The request body is too large."), status=413)
    return JsonResponse(error_body("bad_request", "The request could not be accepted as sent."), status=400)


def permission_denied_view(request, exception=None):
    return JsonResponse(error_body("permission_denied", "You do not have permission to do this."), status=403)


def csrf_failure_view(request, reason=""):
    return JsonResponse(error_body("csrf_failed", "The form's CSRF check failed; reload the page and retry."), status=403)


@csrf_exempt  # a POST to no page is a 404, not a CSRF failure (it serves every unmatched /api/v1/ path)
def not_found_view(request, exception=None):
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def server_error_view(request):
    # Django calls this from inside its except block: a database that failed in a middleware,
    # before any view ran, still gets the 503.
    exc = sys.exc_info()[1]
    if isinstance(exc, DATABASE_UNAVAILABLE_ERRORS):
        return database_unavailable_response(exc)
    return JsonResponse(error_body("server_error", "Internal server error."), status=500)


class CreatedAtCursorPagination(CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "limit"
    ordering = ("-created_at", "-id")


def paginated_response(view, request, queryset, *, serializer_class):
    """One page of `queryset` in the view's cursor pagination (`view.pagination_class`, which the
    schema generator reads too), serialized, with its `next`/`previous` links."""
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)
