"""How the deployed functions reach the database: the owner with the RDS secret, the app with IAM.

Two users, two ways in:

- **the owner** (the RDS master user), for migrations only: the migrate function is given the database
  endpoint (``O_DB_HOST``), the ARN of the secret RDS generated for that user (``O_DB_SECRET_ARN``) and the
  database name (``O_DB_NAME``); the password never appears in the function's configuration. The secret is
  the JSON document RDS writes: ``{"username", "password", "host", "port", "dbname", "engine"}``; the host
  given here replaces its ``host``. It is read through Powertools Parameters with ``force_fetch`` at each
  call: the secret is rotated, and a caller asks for the URI only when it opens a connection.
- **the app role** (``O_DB_IAM_USER``), for everything that serves traffic: no password anywhere, an IAM
  auth token instead, made for each new connection (:class:`IamAuthToken`). The token is a SigV4
  presigned request computed from the function's own credentials, locally, without a network call; the
  proxy (or Aurora) checks it against ``rds-db:connect`` on that user. Rotating the master secret does not
  touch these connections.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import boto3
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


def iam_database_url(host: str, user: str, dbname: str, *, port: int = 5432, sslmode: str = "require") -> str:
    """The URI for ``user`` without a password: :class:`IamAuthToken` gives one per connection. IAM
    authentication needs TLS, so ``sslmode`` is ``require`` (libpq ignores it on a Unix socket)."""
    where = quote(host, safe="") if host.startswith("/") else host
    return f"postgresql://{quote(user, safe='')}@{where}:{port}/{quote(dbname, safe='')}?sslmode={sslmode}"


class IamAuthToken:
    """A fresh IAM auth token for ``user`` at ``host:port`` each time it is called (valid 15 minutes; a
    connection opened with it stays open after that). boto3 signs it locally with the function's role."""

    def __init__(self, host: str, port: int, user: str, *, client: Any | None = None) -> None:
        self.host, self.port, self.user = host, port, user
        self._client = client

    def __call__(self) -> str:
        if self._client is None:
            self._client = boto3.client("rds")
        # A Unix socket directory (a local Postgres, the tests') has no name to sign; nothing checks the
        # token there, so it is signed for localhost. On AWS the host is the proxy's or cluster's DNS name.
        signed_host = "localhost" if self.host.startswith("/") else self.host
        token: str = self._client.generate_db_auth_token(
            DBHostname=signed_host, Port=self.port, DBUsername=self.user, Region=self._client.meta.region_name
        )
        return token
