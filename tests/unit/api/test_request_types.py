"""Request fields that keep values within what the agent loop and Postgres take."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from o.api.schemas.agents import CreateAgent
from o.api.schemas.blocks import UpdateBlock, block_changes
from o.api.schemas.common import in_utc
from o.api.schemas.model_configs import LLMConfigIn, llm_config_from_handle


def test_an_aware_time_is_kept_in_utc() -> None:
    odd = datetime(178, 4, 30, 1, 6, 40, tzinfo=timezone(-timedelta(hours=17, minutes=19)))
    assert in_utc(odd) == datetime(178, 4, 30, 18, 25, 40, tzinfo=UTC)
    naive = datetime(2026, 1, 1)
    assert in_utc(naive) is naive


def test_a_time_that_leaves_the_calendar_in_utc() -> None:
    with pytest.raises(ValueError, match="out of range"):
        in_utc(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))))


@pytest.mark.parametrize("handle", ["gpt-4o-mini", "foo/bar", "openai/", " /x"])
def test_model_handles_the_loop_cannot_call(handle: str) -> None:
    with pytest.raises(ValidationError) as raised:
        CreateAgent.model_validate({"model": handle})
    assert raised.value.errors()[0]["loc"] == ("model",)


def test_a_handle_gives_the_config_it_names() -> None:
    assert llm_config_from_handle("anthropic/claude-3-5-haiku-latest") == {
        "model": "claude-3-5-haiku-latest",
        "model_endpoint_type": "anthropic",
        "context_window": 128_000,
        "handle": "anthropic/claude-3-5-haiku-latest",
    }


def test_llm_config_names_the_field_at_fault() -> None:
    for data, loc in [
        ({"model": "m", "model_endpoint_type": "bogus"}, ("model_endpoint_type",)),
        ({"model": "m", "handle": "foo/bar"}, ("handle",)),
        ({"model": "m", "context_window": 10**12}, ("context_window",)),
    ]:
        with pytest.raises(ValidationError) as raised:
            LLMConfigIn.model_validate(data)
        assert raised.value.errors()[0]["loc"] == loc
    with pytest.raises(ValidationError, match="reasoning_effort"):
        LLMConfigIn.model_validate({"model": "m", "reasoning_effort": "max"})


def test_block_fields_that_always_have_a_value_refuse_null() -> None:
    for field in ("value", "limit", "label", "read_only", "is_template", "metadata"):
        with pytest.raises(ValidationError) as raised:
            UpdateBlock.model_validate({field: None})
        assert raised.value.errors()[0]["loc"] == (field,)
    assert block_changes(UpdateBlock.model_validate({"description": None, "value": "x"})) == {
        "description": None,
        "value": "x",
    }


def test_the_openapi_schema_does_not_offer_null_where_it_is_refused() -> None:
    properties = UpdateBlock.model_json_schema()["properties"]
    assert properties["read_only"]["type"] == "boolean"
    assert {"type": "null"} in properties["description"]["anyOf"]
