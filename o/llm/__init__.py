"""LLM providers behind one interface.

- :mod:`o.llm.types`: provider-neutral messages, requests, responses and stream events.
- :mod:`o.llm.config`: Letta's ``LLMConfig`` (process-wide settings are ``o.config.LLMSettings``).
- :mod:`o.llm.client`: the ``LLMClient`` protocol, ``LLMError`` and the retry policy.
- :mod:`o.llm.providers`: ``client_for(config, keys, options)``; ``route_for`` checks a config's endpoint.
- :mod:`o.llm.endpoints`: which endpoint a call goes to, and whether the operator's key goes with it.
- :mod:`o.llm.openai_compat`, :mod:`o.llm.anthropic_native`: one client per wire protocol, each
  converting O's types to its API and reading its stream events.
- :mod:`o.llm.provider_client`: what both clients share (SDK error mapping, retries, timing).
- :mod:`o.llm.streaming`: assembling a streamed response and driving a provider's stream reader.
- :mod:`o.llm.keys`: where API keys come from (env locally, Secrets Manager in AWS).
- :mod:`o.llm.tokens`: offline token counting.

Nothing is imported here so that ``import o.llm.types`` stays cheap; the SDKs load
only when a client for their provider is first built.
"""
