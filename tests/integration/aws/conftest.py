"""Fixtures for the AWS-mode tests: the local OpenAI wire-protocol server the agent step talks to."""

from tests.servers.fixtures import llm_options, openai_server

__all__ = ["llm_options", "openai_server"]
