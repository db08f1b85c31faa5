"""A database that fails before any view runs (in a middleware) still gets the 503, not a 500.

The view paths (DRF and not) are shown against real processes and a real refusing database in
tests/e2e/test_database_capacity.py; this covers Django's last resort, handler500.
"""

from django.db import OperationalError
from django.test import Client


class DatabaseRefusingMiddleware:
    """What a middleware that reads the database meets when PostgreSQL is full."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raise OperationalError("connection failed: FATAL:  sorry, too many clients already")


def test_a_database_failure_in_a_middleware_is_a_503_with_the_envelope(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.DatabaseRefusingMiddleware"]

    response = Client(raise_request_exception=False).get("/health/live")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "database_unavailable"
    assert "too many clients" not in response.content.decode()


def test_any_other_failure_stays_a_500_with_the_envelope(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.BrokenMiddleware"]

    response = Client(raise_request_exception=False).get("/health/live")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"


class BrokenMiddleware(DatabaseRefusingMiddleware):
    def __call__(self, request):
        raise RuntimeError("a bug")
