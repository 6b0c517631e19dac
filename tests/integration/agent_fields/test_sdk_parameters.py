"""Every parameter of the SDK's ``agents.create`` and ``agents.update`` (letta-client's
AgentCreateParams / AgentUpdateParams) has an expected outcome here: honoured (given alone, it is
saved and shows its effect in the strictly validated AgentState) or refused with a 4xx that names it
and says why. A parameter a new SDK adds fails the coverage test until it is placed in one table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_type_hints

import pytest
from letta_client import Letta, UnprocessableEntityError
from letta_client.types import AgentState, agent_create_params, agent_update_params

from o.api.schemas.agent_settings import UNSUPPORTED

Check = Callable[[AgentState], bool]
JSON_SCHEMA = {"name": "answer", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}
LLM = {
    "model": "gpt-4o-mini",
    "model_endpoint_type": "openai",
    "context_window": 32000,
    "response_format": {"type": "json_object"},
}
EMBEDDING = {"embedding_endpoint_type": "openai", "embedding_model": "text-embedding-3-small", "embedding_dim": 256}


def _env_keys(agent: AgentState) -> list[str]:
    return [v.key for v in agent.secrets or []]


# parameter -> (a value, what the agent shows when it was honoured); on create and on update
HONOURED_BOTH: dict[str, tuple[Any, Check]] = {
    "context_window_limit": (64000, lambda a: a.llm_config.context_window == 64000),
    "description": ("a helper", lambda a: a.description == "a helper"),
    "embedding": ("openai/text-embedding-3-large", lambda a: a.embedding_config.embedding_dim == 3072),  # type: ignore[union-attr]
    "embedding_config": (EMBEDDING, lambda a: a.embedding_config.embedding_dim == 256),  # type: ignore[union-attr]
    "enable_sleeptime": (False, lambda a: a.enable_sleeptime is False),
    "llm_config": (
        LLM,
        lambda a: (
            a.llm_config.context_window == 32000
            and a.llm_config.response_format is not None
            and a.llm_config.response_format.type == "json_object"
        ),
    ),
    "max_tokens": (1234, lambda a: a.llm_config.max_tokens == 1234),
    "metadata": ({"k": "v"}, lambda a: (a.metadata or {}).get("k") == "v"),
    "model": ("openai/gpt-4o", lambda a: a.llm_config.model == "gpt-4o"),
    "model_settings": (
        {"provider_type": "openai", "temperature": 0.1, "max_output_tokens": 99},
        lambda a: (a.llm_config.temperature, a.llm_config.max_tokens) == (0.1, 99),
    ),
    "name": ("renamed", lambda a: a.name == "renamed"),
    "parallel_tool_calls": (True, lambda a: a.llm_config.parallel_tool_calls is True),
    "reasoning": (True, lambda a: a.llm_config.enable_reasoner is True),
    "response_format": (
        {"type": "json_schema", "json_schema": JSON_SCHEMA},
        lambda a: a.response_format is not None and a.response_format.type == "json_schema",
    ),
    "secrets": ({"TOKEN": "t"}, lambda a: _env_keys(a) == ["TOKEN"]),
    "system": ("Be brief.", lambda a: a.system == "Be brief."),
    "tags": (["x"], lambda a: a.tags == ["x"]),
    "timezone": ("Europe/Paris", lambda a: a.timezone == "Europe/Paris"),
    "message_buffer_autoclear": (True, lambda a: a.message_buffer_autoclear is True),  # effect: test_agent_fields
    # effect: tests/integration/folders/test_file_caps_and_search.py
    "max_files_open": (7, lambda a: a.max_files_open == 7),
    "per_file_view_window_char_limit": (3000, lambda a: a.per_file_view_window_char_limit == 3000),
    "tool_exec_environment_variables": ({"OTHER": "o"}, lambda a: _env_keys(a) == ["OTHER"]),
    "tool_rules": ([{"type": "exit_loop", "tool_name": "send_message"}], lambda a: len(a.tool_rules or []) == 1),
    # ids of existing blocks and tools: attaching none is the value every organization can give
    "block_ids": ([], lambda a: a.blocks == []),
    "tool_ids": ([], lambda a: all(str(t.tool_type).startswith("letta") for t in a.tools)),  # the base tools only
}
HONOURED_CREATE_ONLY: dict[str, tuple[Any, Check]] = {
    "agent_type": ("memgpt_agent", lambda a: a.agent_type == "memgpt_agent"),
    "embedding_chunk_size": (77, lambda a: a.embedding_config.embedding_chunk_size == 77),  # type: ignore[union-attr]
    "enable_reasoner": (True, lambda a: a.llm_config.enable_reasoner is True),
    "include_base_tools": (False, lambda a: a.tools == []),
    "initial_message_sequence": ([{"role": "user", "content": "hi"}], lambda a: True),  # see test_agent_fields
    "max_reasoning_tokens": (2048, lambda a: a.llm_config.max_reasoning_tokens == 2048),
    "memory_blocks": ([{"label": "human", "value": "Ada"}], lambda a: [b.value for b in a.blocks] == ["Ada"]),
    "tools": (["send_message"], lambda a: "send_message" in [t.name for t in a.tools]),  # a base tool, by name
}
# parameter -> a value O cannot honour (UNSUPPORTED says why; unset, null or "off" is accepted)
REFUSED: dict[str, Any] = {
    "base_template_id": "tpl-1",
    "template_id": "tpl-1",
    "from_template": "tpl-1",
    "template": True,
    "memory_variables": {"a": "b"},
    "project": "proj",
    "project_id": "proj-1",
    "hidden": True,
    "compaction_settings": {"mode": "all"},
    "folder_ids": ["folder-1"],
    "source_ids": ["source-1"],
    "include_default_source": True,
    "include_base_tool_rules": True,
    "message_ids": ["message-1"],
    "last_run_completion": "2026-01-01T00:00:00Z",
    "last_run_duration_ms": 5,
    "last_stop_reason": "end_turn",
}


def _params(kind: type) -> set[str]:
    return set(get_type_hints(kind, include_extras=False))


CREATE = _params(agent_create_params.AgentCreateParams)
UPDATE = _params(agent_update_params.AgentUpdateParams)


# parameters honoured with their effect tested elsewhere (they need things made first)
ELSEWHERE = {"identity_ids": "tests/integration/identities/test_identities_api.py"}


def test_every_sdk_parameter_has_an_outcome() -> None:
    honoured_create = set(HONOURED_BOTH) | set(HONOURED_CREATE_ONLY) | set(ELSEWHERE)
    assert not CREATE - honoured_create - set(REFUSED), sorted(CREATE - honoured_create - set(REFUSED))
    assert not honoured_create & set(REFUSED)
    honoured_update = set(HONOURED_BOTH) | set(ELSEWHERE)
    assert not UPDATE - honoured_update - set(REFUSED), sorted(UPDATE - honoured_update - set(REFUSED))
    assert set(REFUSED) <= CREATE | UPDATE and set(REFUSED) == set(UNSUPPORTED)


@pytest.mark.parametrize("name", sorted(CREATE - set(REFUSED) - set(ELSEWHERE)))
def test_create_honours(letta: Letta, name: str) -> None:
    value, shows = {**HONOURED_BOTH, **HONOURED_CREATE_ONLY}[name]
    agent = letta.agents.create(**{name: value})
    assert shows(agent), (name, agent)
    assert shows(letta.agents.retrieve(agent.id)), name


def test_update_honours(letta: Letta) -> None:
    agent = letta.agents.create(model="openai/gpt-4o-mini")
    for name in sorted(UPDATE - set(REFUSED) - set(ELSEWHERE)):
        value, shows = HONOURED_BOTH[name]
        updated = letta.agents.update(agent.id, **{name: value})
        assert shows(updated), (name, updated)
        # the embedding is set twice above; a new agent keeps each case independent of the last
        agent = letta.agents.create(model="openai/gpt-4o-mini")


def test_refused_parameters_name_themselves(letta: Letta) -> None:
    agent = letta.agents.create(model="openai/gpt-4o-mini", name="unchanged")
    for name, value in REFUSED.items():
        if name in CREATE:
            with pytest.raises(UnprocessableEntityError, match=name) as refused:
                letta.agents.create(**{name: value})
            assert UNSUPPORTED[name] in str(refused.value), name
        if name in UPDATE:
            with pytest.raises(UnprocessableEntityError, match=name):
                letta.agents.update(agent.id, name="changed", **{name: value})
        # the "off" value is accepted: clients that send Letta's defaults keep working
        if name in CREATE:
            letta.agents.create(**{name: None})
    assert letta.agents.retrieve(agent.id).name == "unchanged"
