"""Tool secrets on AWS: data keys from KMS (moto), picked by the composition root when a KMS key is
configured, and the API Lambda sealing with them; a Lambda without a key refuses to store secrets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from o import runtime
from o.aws.kms import ENCRYPTION_CONTEXT, KmsKeyWrapper
from o.config import settings_from
from o.store.db import Database
from o.tools.secrets.envelope import Envelope, SecretBox, SecretUnavailable, variable_context
from tests.integration.conftest import new_org_key
from tests.integration.functions.test_api_handler import event
from tests.lambdas import Context, aws_credentials, fresh_handler, service_environment

CONTEXT = variable_context("agent-1", "API_TOKEN")


@pytest.fixture
def kms_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    aws_credentials(monkeypatch)
    with mock_aws():
        yield boto3.client("kms").create_key(Description="o tool secrets")["KeyMetadata"]["KeyId"]


def test_the_composition_root_picks_kms_and_data_keys_come_from_it(kms_key: str) -> None:
    box = runtime.secret_box(settings_from({"O_SECRETS_KMS_KEY_ID": kms_key}))
    assert isinstance(box.wrapper, KmsKeyWrapper)
    sealed = box.seal("sk-live-1", CONTEXT)
    assert b"sk-live-1" not in sealed
    # another execution environment opens it through KMS Decrypt
    assert runtime.secret_box(settings_from({"O_SECRETS_KMS_KEY_ID": kms_key})).open(sealed, CONTEXT) == "sk-live-1"
    # the stored data key is a KMS ciphertext for this key, usable only with the tool-secrets context
    kms = boto3.client("kms")
    wrapped = Envelope.from_bytes(sealed).wrapped_key
    plain = kms.decrypt(CiphertextBlob=wrapped, EncryptionContext=ENCRYPTION_CONTEXT)
    assert plain["KeyId"].endswith(kms_key) and len(plain["Plaintext"]) == 32
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=wrapped, EncryptionContext={"purpose": "something else"})


def test_kms_failures_are_secret_unavailable(kms_key: str) -> None:
    with pytest.raises(SecretUnavailable, match="KMS could not make a data key"):
        SecretBox(KmsKeyWrapper("00000000-0000-0000-0000-000000000000")).seal("x", CONTEXT)
    envelope = Envelope.from_bytes(SecretBox(KmsKeyWrapper(kms_key)).seal("x", CONTEXT))
    damaged = Envelope(envelope.wrapped_key[:-4] + b"\0\0\0\0", envelope.nonce, envelope.ciphertext)
    with pytest.raises(SecretUnavailable, match="KMS could not unwrap"):
        SecretBox(KmsKeyWrapper(kms_key)).open(damaged.to_bytes(), CONTEXT)


def _body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def test_the_api_lambda_seals_with_kms(
    kms_key: str, pg_url: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    service_environment(monkeypatch, pg_url, POWERTOOLS_TRACE_DISABLED="1", O_SECRETS_KMS_KEY_ID=kms_key)
    key = new_org_key(db)
    with fresh_handler("functions.api.handler") as module:
        created = module.handler(
            event("POST", "/v1/agents/", key, {"secrets": {"API_TOKEN": "sk-live-2"}}), Context("o-api")
        )
    assert created["statusCode"] == 200, created["body"]
    agent = _body(created)
    assert agent["secrets"] == [{"agent_id": agent["id"], "key": "API_TOKEN", "value": "********", "description": None}]
    with db.read() as conn:
        row = conn.execute("SELECT value, sealed FROM agent_tool_env WHERE agent_id = %s", (agent["id"],)).fetchone()
    assert row["value"] is None
    opened = SecretBox(KmsKeyWrapper(kms_key)).open(row["sealed"], variable_context(agent["id"], "API_TOKEN"))
    assert opened == "sk-live-2"


def test_a_lambda_without_a_kms_key_refuses_secrets_and_says_why(
    pg_url: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    service_environment(monkeypatch, pg_url, POWERTOOLS_TRACE_DISABLED="1")
    key = new_org_key(db)
    with fresh_handler("functions.api.handler") as module:
        refused = module.handler(event("POST", "/v1/agents/", key, {"secrets": {"A": "b"}}), Context("o-api"))
        plain = module.handler(event("POST", "/v1/agents/", key, {"name": "no-secrets"}), Context("o-api"))
    assert refused["statusCode"] == 503 and "O_SECRETS_KMS_KEY_ID" in _body(refused)["detail"]
    assert plain["statusCode"] == 200
