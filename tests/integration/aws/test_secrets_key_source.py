"""API keys from Secrets Manager through Powertools Parameters, under moto; the composition root picks
the secret when its ARN is configured and the settings' own keys otherwise."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from o import runtime
from o.aws.secrets import SecretsManagerKeySource
from o.config import settings_from
from o.llm.client import ClientOptions
from o.llm.providers import client_for
from o.llm.types import ChatMessage, ChatRequest
from tests.servers.fixtures import operator_at
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import say


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    parameters.clear_caches()
    # Powertools keeps a module-level provider whose boto3 client may predate this mock.
    parameters.base.DEFAULT_PROVIDERS.clear()
    with mock_aws():
        yield
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()


def _secret(value: dict[str, str]) -> str:
    return boto3.client("secretsmanager").create_secret(Name="o/llm-keys", SecretString=json.dumps(value))["ARN"]


def test_keys_come_from_the_secret_when_its_arn_is_configured(
    aws: None, openai_server: OpenAIServer, llm_options: ClientOptions
) -> None:
    arn = _secret({"OPENAI_API_KEY": "sk-from-secrets-manager", "anthropic": "sk-ant-sm"})
    settings = settings_from({"O_LLM_KEYS_SECRET_ARN": arn, "OPENAI_API_KEY": "sk-from-env-must-not-be-used"})
    source = runtime.key_source(settings)
    assert isinstance(source, SecretsManagerKeySource)
    assert source.api_key("anthropic") == "sk-ant-sm"
    assert source.api_key("groq") is None

    # the server is the operator's OpenAI endpoint: the operator's key goes there
    client = client_for(openai_server.llm_config(), source, operator_at(llm_options, openai=openai_server.base_url))
    openai_server.push(say("hello"))
    assert client.chat(ChatRequest([ChatMessage.user("hi")])).content == "hello"
    assert openai_server.script.headers[0]["authorization"] == "Bearer sk-from-secrets-manager"


def test_secret_is_cached_between_lookups(aws: None) -> None:
    arn = _secret({"openai": "first"})
    source = SecretsManagerKeySource(arn, max_age_s=300)
    assert source.api_key("openai") == "first"
    boto3.client("secretsmanager").put_secret_value(SecretId=arn, SecretString=json.dumps({"openai": "second"}))
    assert source.api_key("openai") == "first"
    assert SecretsManagerKeySource(arn, max_age_s=0).api_key("openai") == "second"


def test_a_secret_that_is_not_a_json_object_is_rejected(aws: None) -> None:
    arn = boto3.client("secretsmanager").create_secret(Name="bad", SecretString='["not", "an", "object"]')["ARN"]
    with pytest.raises(ValueError, match="JSON object"):
        SecretsManagerKeySource(arn).api_key("openai")


def test_the_settings_keys_are_used_without_a_secret_arn() -> None:
    assert runtime.key_source(settings_from({"GROQ_API_KEY": "gsk-env"})).api_key("groq") == "gsk-env"
