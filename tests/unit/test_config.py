"""One typed Settings: validated once at start, a bad value names its variable, a misspelt one is named."""

from __future__ import annotations

import pytest

from o.config import ConfigError, Settings, build_settings, env_name, env_names, settings_from, unknown_variables


def test_bad_port_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O_PORT", "99999")
    with pytest.raises(ConfigError, match="O_PORT"):
        build_settings()


def test_database_url_must_be_a_postgres_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O_DATABASE_URL", "mysql://nope")
    with pytest.raises(ConfigError, match="O_DATABASE_URL"):
        build_settings()


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O_PORT", "9000")
    assert build_settings(port=9100).port == 9100
    assert build_settings().port == 9000


def test_a_group_flag_overrides_one_field_and_keeps_the_rest() -> None:
    settings = settings_from({"O_SLEEPTIME_POLL_SECONDS": "3"}, sleeptime={"enabled": False})
    assert (settings.sleeptime.enabled, settings.sleeptime.poll_seconds) == (False, 3.0)


def test_every_group_is_read_and_a_bad_value_names_its_variable() -> None:
    settings = settings_from(
        {
            "O_AGENT_DEFAULT_MAX_STEPS": "7",
            "O_LLM_MAX_RETRIES": "0",
            "O_LLM_TIMEOUT_S": "2.5",
            "O_EVOLUTION_CANARY_WEIGHT": "0.25",
            "O_SLEEPTIME_EVERY_N_MESSAGES": "3",
            "O_EMBEDDING_THREADS": "2",
            "O_DB_HOST": "proxy",
            "O_SANDBOX_ISOLATE": "false",
        }
    )
    assert settings.agent.default_max_steps == 7
    assert (settings.llm.max_retries, settings.llm.timeout_s) == (0, 2.5)
    assert settings.evolution.canary_weight == 0.25
    assert settings.sleeptime.every_n_messages == 3
    assert settings.embedding.threads == 2
    assert settings.db.host == "proxy"
    assert settings.sandbox.isolate is False
    with pytest.raises(ConfigError, match="O_AGENT_DEFAULT_MAX_STEPS"):
        settings_from({"O_AGENT_DEFAULT_MAX_STEPS": "many"})
    with pytest.raises(ConfigError, match="O_SANDBOX_FUNCTION_NAME"):
        settings_from({"O_SANDBOX_KIND": "lambda"})


def test_short_names_and_provider_keys() -> None:
    settings = settings_from({"O_SANDBOX": "local", "O_SLEEPTIME": "false", "OPENAI_API_KEY": " sk-1 "})
    assert settings.sandbox.kind == "local" and settings.sleeptime.enabled is False
    assert settings.keys.get("openai") == "sk-1" and settings.keys.get("groq") is None
    # the long name wins over the short one
    assert settings_from({"O_SLEEPTIME": "false", "O_SLEEPTIME_ENABLED": "true"}).sleeptime.enabled is True
    # keys never show in a repr
    assert "sk-1" not in repr(settings)


def test_empty_means_unset() -> None:
    assert settings_from({"O_DATABASE_URL": "", "O_PORT": " "}) == Settings()


def test_a_misspelt_variable_is_named_with_the_closest_setting() -> None:
    warnings = unknown_variables({"O_AGNET_DEFAULT_MAX_STEPS": "3", "O_PORT": "1", "O_TEST_DATABASE_URL": "x"})
    assert warnings == [
        "O_AGNET_DEFAULT_MAX_STEPS is not a setting of O and is ignored; did you mean O_AGENT_DEFAULT_MAX_STEPS?"
    ]


def test_every_setting_has_one_variable_name() -> None:
    names = env_names()
    assert names["O_AGENT_STATE_MACHINE_ARN"] == ("agent", "state_machine_arn")
    assert names["O_MAX_BODY_BYTES"] == (None, "max_body_bytes")
    assert env_name("evolution", "step_alias") == "O_EVOLUTION_STEP_ALIAS"
    with pytest.raises(KeyError):
        env_name("agent", "no_such_setting")
