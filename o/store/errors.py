"""The database's errors the callers outside the store tell apart, so the driver stays in the store.

``DataError`` is every error of a value the database cannot take (SQLSTATE class 22: a NUL
character, a number or time out of range, invalid JSON such as NaN); ``NotNullViolation`` a null
where a column needs a value. ``OperationalError`` is the driver's error for a connection that could
not be made or was lost (its ``sqlstate`` is None when the server never answered); the deploy-time
migrations try again on it while the database is not reachable yet.
"""

from __future__ import annotations

from psycopg import DataError, OperationalError
from psycopg.errors import CheckViolation, NotNullViolation, UniqueViolation

__all__ = ["CheckViolation", "DataError", "NotNullViolation", "OperationalError", "UniqueViolation"]
