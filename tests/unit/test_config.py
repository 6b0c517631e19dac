"""Configuration is validated once at start, and a bad value names its variable."""

from __future__ import annotations

import pytest

from o.config import ConfigError, build_settings
from o.runtime import check_environment


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


def test_every_module_setting_is_checked_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    check_environment()
    monkeypatch.setenv("O_AGENT_DEFAULT_MAX_STEPS", "many")
    with pytest.raises(ConfigError, match="O_AGENT_DEFAULT_MAX_STEPS"):
        check_environment()
