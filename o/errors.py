"""Domain errors. The API maps each to an HTTP status with a JSON body naming the problem."""

from __future__ import annotations


class OError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(OError):
    status_code = 404
    code = "not_found"


class Conflict(OError):
    status_code = 409
    code = "conflict"


class InvalidInput(OError):
    status_code = 422
    code = "invalid_input"


class Unauthorized(OError):
    status_code = 401
    code = "unauthorized"


class LimitExceeded(InvalidInput):
    """A value is longer than the limit it must fit (e.g. a block's character limit)."""

    code = "limit_exceeded"
