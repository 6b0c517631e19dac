"""What a failed run answers the caller: 4xx when the caller can fix it, 500 when O failed."""

from __future__ import annotations

import pytest

from o.agent.runner import failure_text
from o.agent.runs import failure_status, worker_failure
from o.errors import Conflict, InvalidInput, LimitExceeded, NotFound, OError


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (InvalidInput("tool_rules[0] names no tool"), 422),
        (LimitExceeded("block human is over its limit"), 422),
        (Conflict("the agent is busy"), 409),
        (NotFound("agent not found"), 404),
        (OError("something in O"), 500),
        (RuntimeError("a bug"), 500),
    ],
)
def test_a_worker_failure_keeps_the_status_of_its_error(exc: Exception, status: int) -> None:
    assert failure_status(worker_failure(failure_text(exc))) == status


def test_an_unusable_llm_config_is_the_agents_to_fix() -> None:
    assert failure_status("the agent's llm_config is unusable: no model") == 422
    assert failure_status("something else entirely") == 500
