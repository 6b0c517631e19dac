from tests.servers.fixtures import anthropic_server, llm_keys, llm_options, openai_server

__all__ = ["anthropic_server", "llm_keys", "llm_options", "openai_server"]
