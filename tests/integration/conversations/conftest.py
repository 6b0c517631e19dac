"""The agent-loop fixtures (an app on the scripted local model servers), for conversations."""

from tests.integration.agent.conftest import agent_app, api, engine  # noqa: F401
from tests.servers.fixtures import openai_server  # noqa: F401
