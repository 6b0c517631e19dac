"""The libpq URI of the deployed database, built from the RDS secret in Secrets Manager.

In AWS the Lambdas are given the RDS Proxy endpoint (``O_DB_HOST``), the ARN of the
secret RDS generated for the master user (``O_DB_SECRET_ARN``) and the database name
(``O_DB_NAME``); the password itself never appears in the function's configuration.
The secret is the JSON document RDS writes: ``{"username", "password", "host",
"port", "dbname", "engine"}``. Its ``host`` is the instance, so the proxy endpoint
given here replaces it: the Lambdas must go through the proxy.

The secret is read through Powertools Parameters, never cached across calls (``max_age=0``): the
secret may be rotated, and a caller asks for the URI only when it opens a connection.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from aws_lambda_powertools.utilities import parameters


class SecretFormatError(ValueError):
    """The secret is not the JSON document RDS writes for a database user."""


def url_from_secret_document(document: str, *, host: str, dbname: str | None = None, sslmode: str = "require") -> str:
    """A ``postgresql://`` URI from the text of an RDS credentials secret."""
    try:
        values: Any = json.loads(document)
    except json.JSONDecodeError as exc:
        raise SecretFormatError("the database secret is not JSON") from exc
    if not isinstance(values, dict):
        raise SecretFormatError("the database secret is not a JSON object")
    missing = [key for key in ("username", "password") if not values.get(key)]
    if missing:
        raise SecretFormatError(f"the database secret has no {' or '.join(missing)}")
    port = int(values.get("port") or 5432)
    name = dbname or values.get("dbname") or "postgres"
    # Passwords RDS generates may hold characters that are special in a URI.
    user = quote(str(values["username"]), safe="")
    password = quote(str(values["password"]), safe="")
    # libpq accepts a Unix socket directory as a percent-encoded host (local runs and tests).
    where = quote(host, safe="") if host.startswith("/") else host
    return f"postgresql://{user}:{password}@{where}:{port}/{quote(name, safe='')}?sslmode={sslmode}"


def database_url_from_secret(host: str, secret_arn: str, dbname: str, *, sslmode: str = "require") -> str:
    """Read the RDS credentials secret and return the URI to reach ``dbname`` on ``host``."""
    document = parameters.get_secret(secret_arn, force_fetch=True)
    if not isinstance(document, str) or not document:
        raise SecretFormatError(f"secret {secret_arn} holds no SecretString")
    return url_from_secret_document(document, host=host, dbname=dbname, sslmode=sslmode)
