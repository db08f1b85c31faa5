"""Middleware every response passes through."""

from django.utils.deprecation import MiddlewareMixin

from apps.core.api import DATABASE_UNAVAILABLE_ERRORS, database_unavailable_response


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """A 503 with the error envelope and Retry-After when the database refuses a view outside DRF
    (the health probes, the inbox stream's opening reads, the admin); DRF's views get the same
    from apps.core.api.exception_handler."""

    def process_exception(self, request, exception):
        if isinstance(exception, DATABASE_UNAVAILABLE_ERRORS):
            return database_unavailable_response(exception)
        return None
