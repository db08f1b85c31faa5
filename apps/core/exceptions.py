"""Errors that services raise and the API turns into the error envelope."""

from typing import Any


class ApplicationError(Exception):
    """A request that cannot be carried out as asked: a 4xx with a stable machine-readable code."""

    status_code = 422

    def __init__(self, code: str, message: str, *, details: dict[str, Any] | None = None, status_code: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        if status_code is not None:
            self.status_code = status_code


class NotFound(ApplicationError):
    status_code = 404

    def __init__(self, message: str = "Not found."):
        super().__init__("not_found", message)


class Conflict(ApplicationError):
    status_code = 409
