"""The stack sets each function's environment from O's own setting names: every O_* variable it sets is
a setting (`o.config.env_names`), the values parse into one valid `Settings`, and each function gets the
settings its handler needs (a deploy that forgot one would only fail on the first request)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from o.config import Settings, env_names, settings_from, unknown_variables
from tests.infra.conftest import Synthesized

HANDLERS = {
    "api": "functions.api.handler.handler",
    "agent_step": "functions.agent_step.handler.handler",
    "evolution": "functions.evolution.handler.handler",
    "sleeptime": "functions.sleeptime.handler.handler",
    "migrate": "functions.migrate.handler.handler",
    "tool_sandbox": "functions.tool_sandbox.handler.handler",
    "alias": "functions.alias.handler.handler",
    "ingest": "functions.ingest.handler.handler",
    "dead_letters": "functions.dead_letters.handler.handler",
}


def _database(s: Settings) -> bool:
    # as the app role with an IAM token, no database secret; the proxy multiplexes only unprepared statements
    return (
        bool(s.db.host and s.db.iam_user == "o_app")
        and s.db.secret_arn is None
        and s.disable_prepared_statements
        and not s.run_migrations
    )


def _owner(s: Settings) -> bool:
    # the migrations: the owner's secret, and the app role they create and grant
    return bool(s.db.host and s.db.secret_arn and s.db.app_role == "o_app") and s.db.iam_user is None


def _models(s: Settings) -> bool:
    return s.embedding.model_path is not None and s.embedding.tokenizer_path is not None


def _loop(s: Settings) -> bool:
    return bool(s.llm.keys_secret_arn) and s.sandbox.uses_lambda and _models(s)


def _evolution(s: Settings) -> bool:
    e = s.evolution
    return bool(e.step_function_name and e.state_machine_arn) and e.step_alias == "live"


def _secrets(s: Settings) -> bool:
    # a Lambda's files do not outlive it: tool secrets are sealed with KMS data keys there
    return bool(s.secrets.kms_key_id) and s.secrets.key_file is None


def _files(s: Settings) -> bool:
    # uploads' bytes in the bucket, announced on the ingest queue
    return bool(s.files.bucket and s.files.ingest_queue_url)


NEEDS: dict[str, Callable[[Settings], bool]] = {
    "api": lambda s: (
        _database(s) and _loop(s) and _evolution(s) and bool(s.agent.state_machine_arn) and _secrets(s) and _files(s)
    ),
    # the file's lease outlives the function's 15-minute timeout, so a redelivered message finds it free
    "ingest": lambda s: _database(s) and _models(s) and _files(s) and s.files.lease_seconds > 900,
    # the ingest queue's dead letters: the database and the bucket (an import's bytes to delete), the
    # reason's count of deliveries as the queue's redrive policy has it; no queue to announce on, no keys
    "dead_letters": lambda s: (
        _database(s)
        and bool(s.files.bucket)
        and s.files.ingest_queue_url is None
        and s.files.max_receives == 5
        and s.files.lease_seconds > 900
        and s.llm.keys_secret_arn is None
    ),
    "agent_step": lambda s: _database(s) and _loop(s) and _secrets(s),
    "evolution": lambda s: _database(s) and _loop(s) and _evolution(s) and _secrets(s),
    # a pass starts evolutions, never agent runs: no agent-loop machine (nor the right to start it)
    "sleeptime": lambda s: _database(s) and _loop(s) and _evolution(s) and s.agent.state_machine_arn is None,
    "migrate": lambda s: _owner(s) and _secrets(s),
    # the sandbox runs untrusted code: it is told nothing about O beyond running in Lambda
    "tool_sandbox": lambda s: s == Settings(runtime="lambda"),
    # the deploy-time owner of the agent step's live alias: no database, no keys, nothing of the agents
    "alias": lambda s: (
        s.db.secret_arn is None
        and s.db.iam_user is None
        and s.llm.keys_secret_arn is None
        and not s.sandbox.function_name
    ),
}


def _environment(synthesized: Synthesized, handler: str) -> dict[str, Any]:
    found = [
        v["Properties"].get("Environment", {}).get("Variables", {})
        for v in synthesized.resources("AWS::Lambda::Function").values()
        if v["Properties"].get("Handler") == handler
    ]
    assert len(found) == 1, handler
    return found[0]


def _resolved(env: dict[str, Any]) -> dict[str, str]:
    """The values as the function would see them: a reference resolves to some ARN or endpoint at deploy time."""
    return {k: v if isinstance(v, str) else f"arn:aws:resolved:{k.lower()}" for k, v in env.items()}


@pytest.mark.parametrize("role", sorted(HANDLERS))
def test_every_variable_is_a_setting_and_the_function_has_what_it_needs(synthesized: Synthesized, role: str) -> None:
    env = _resolved(_environment(synthesized, HANDLERS[role]))
    ours = {k: v for k, v in env.items() if k.startswith("O_")}
    assert ours and not unknown_variables(ours), unknown_variables(ours)
    assert set(ours) <= set(env_names())
    settings = settings_from(env)
    assert settings.runtime == "lambda"
    assert NEEDS[role](settings), f"{role} is missing a setting its handler needs: {sorted(ours)}"


def test_every_function_of_the_stack_is_checked(synthesized: Synthesized) -> None:
    handlers = {v["Properties"].get("Handler") for v in synthesized.resources("AWS::Lambda::Function").values()}
    ours = {h for h in handlers if h and h.startswith("functions.")}
    assert ours == set(HANDLERS.values())
