"""The deployed database URI, built from a Secrets Manager secret (moto) and used on the real Postgres."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import psycopg
import pytest
from moto import mock_aws

from o.aws.database import SecretFormatError, database_url_from_secret, url_from_secret_document


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def _rds_secret(client: Any, **values: Any) -> str:
    document = {"engine": "postgres", "host": "o-postgres.abc.us-east-1.rds.amazonaws.com", **values}
    return client.create_secret(Name="o/db", SecretString=json.dumps(document))["ARN"]


def test_proxy_host_replaces_the_instance_host_and_password_is_escaped(secrets: Any) -> None:
    arn = _rds_secret(secrets, username="o_admin", password="p@ss:w/rd?#%", port=5432, dbname="postgres")
    url = database_url_from_secret("o-proxy.proxy-abc.us-east-1.rds.amazonaws.com", arn, "o")
    parts = urlsplit(url)
    assert parts.hostname == "o-proxy.proxy-abc.us-east-1.rds.amazonaws.com"
    assert parts.port == 5432
    assert parts.path == "/o"
    assert parts.query == "sslmode=require"
    info = psycopg.conninfo.conninfo_to_dict(url)
    assert info["user"] == "o_admin"
    assert info["password"] == "p@ss:w/rd?#%"


def test_the_built_url_connects_to_a_real_postgres(secrets: Any, pg_url: str) -> None:
    info = psycopg.conninfo.conninfo_to_dict(pg_url)
    arn = _rds_secret(
        secrets,
        username=info.get("user", "postgres"),
        password="unused-by-local-trust-auth",
        port=int(info.get("port") or 5432),
    )
    url = database_url_from_secret(info["host"], arn, info.get("dbname", "postgres"), sslmode="disable")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchone()


def test_missing_secret_fields_are_named() -> None:
    with pytest.raises(SecretFormatError, match="password"):
        url_from_secret_document(json.dumps({"username": "u"}), host="h")
    with pytest.raises(SecretFormatError, match="not JSON"):
        url_from_secret_document("user=u", host="h")


def test_port_and_dbname_fall_back_to_the_secret(secrets: Any) -> None:
    arn = _rds_secret(secrets, username="u", password="p", port=6543, dbname="fromsecret")
    url = url_from_secret_document(secrets.get_secret_value(SecretId=arn)["SecretString"], host="proxy.example")
    assert urlsplit(url).port == 6543 and urlsplit(url).path == "/fromsecret"
