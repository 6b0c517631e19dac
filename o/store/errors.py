"""The database's integrity errors, as the API maps them to 409 and 422 (the driver stays in the store)."""

from __future__ import annotations

from psycopg.errors import CheckViolation, UniqueViolation

__all__ = ["CheckViolation", "UniqueViolation"]
