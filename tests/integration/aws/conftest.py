"""Fixtures for the AWS-mode tests: the local OpenAI wire-protocol server the agent step talks to."""

from tests.servers.fixtures import openai_server  # noqa: F401
