"""The organization's messages: the strict SDK client and a raw client of one organization."""

from tests.integration.steps.conftest import agent_app, api, base_url, engine, key, letta, openai_server  # noqa: F401
