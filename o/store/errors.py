"""The database's errors the API maps to a status (409, 422), so the driver stays in the store.

``DataError`` is every error of a value the database cannot take (SQLSTATE class 22: a NUL
character, a number or time out of range, invalid JSON such as NaN); ``NotNullViolation`` a null
where a column needs a value.
"""

from __future__ import annotations

from psycopg import DataError
from psycopg.errors import CheckViolation, NotNullViolation, UniqueViolation

__all__ = ["CheckViolation", "DataError", "NotNullViolation", "UniqueViolation"]
