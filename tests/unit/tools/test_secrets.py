"""The secret box, its sealed form, the local key file and the tool-variable decisions: no database."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from o.config import ConfigError
from o.errors import InvalidInput
from o.tools.catalog import MASKED, plan_variables
from o.tools.secrets.envelope import (
    DataKey,
    Envelope,
    SecretBox,
    SecretUnavailable,
    Unconfigured,
    variable_context,
)
from o.tools.secrets.keyfile import KeyFile

CONTEXT = variable_context("agent-1", "API_TOKEN")


class Counting:
    """The key-wrapper port around a real key file, counting what the box asks of it."""

    def __init__(self, inner: KeyFile) -> None:
        self.inner = inner
        self.made = 0
        self.unwrapped = 0

    def new_data_key(self) -> DataKey:
        self.made += 1
        return self.inner.new_data_key()

    def unwrap(self, wrapped: bytes) -> bytes:
        self.unwrapped += 1
        return self.inner.unwrap(wrapped)


@pytest.fixture
def key_file(tmp_path: Path) -> KeyFile:
    return KeyFile(tmp_path / "data" / "secrets.key")


def test_seal_and_open_round_trip_without_the_plaintext_in_the_sealed_form(key_file: KeyFile) -> None:
    box = SecretBox(key_file)
    sealed = box.seal("t0k-ünïcode", CONTEXT)
    assert b"t0k" not in sealed and "t0k-ünïcode".encode() not in sealed
    assert box.open(sealed, CONTEXT) == "t0k-ünïcode"
    # another process with the same key file opens it (nothing is remembered between them)
    assert SecretBox(KeyFile(key_file.path)).open(sealed, CONTEXT) == "t0k-ünïcode"
    # two seals of one value differ (fresh nonce each time)
    assert box.seal("same", CONTEXT) != box.seal("same", CONTEXT)


def test_a_sealed_value_is_bound_to_its_agent_and_name(key_file: KeyFile) -> None:
    box = SecretBox(key_file)
    sealed = box.seal("t0k", CONTEXT)
    for elsewhere in (variable_context("agent-2", "API_TOKEN"), variable_context("agent-1", "OTHER")):
        with pytest.raises(SecretUnavailable, match="altered or moved"):
            box.open(sealed, elsewhere)
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(SecretUnavailable):
        box.open(bytes(tampered), CONTEXT)


def test_one_data_key_seals_many_values_and_is_renewed_after_its_uses(key_file: KeyFile) -> None:
    wrapper = Counting(key_file)
    box = SecretBox(wrapper, data_key_uses=3)
    sealed = [box.seal(f"v{i}", CONTEXT) for i in range(7)]
    assert wrapper.made == 3  # uses 1-3, 4-6, 7
    assert len({Envelope.from_bytes(s).wrapped_key for s in sealed}) == 3
    # the box remembers the data keys it made: opening costs no unwrap
    assert [box.open(s, CONTEXT) for s in sealed] == [f"v{i}" for i in range(7)]
    assert wrapper.unwrapped == 0
    # a new process unwraps each data key once, then remembers it
    fresh_wrapper = Counting(KeyFile(key_file.path))
    fresh = SecretBox(fresh_wrapper)
    for _ in range(3):
        assert [fresh.open(s, CONTEXT) for s in sealed] == [f"v{i}" for i in range(7)]
    assert fresh_wrapper.unwrapped == 3


def test_the_sealed_form(key_file: KeyFile) -> None:
    sealed = SecretBox(key_file).seal("x", CONTEXT)
    envelope = Envelope.from_bytes(sealed)
    assert sealed[0] == 1 and envelope.to_bytes() == sealed and len(envelope.nonce) == 12
    with pytest.raises(SecretUnavailable, match="truncated"):
        Envelope.from_bytes(sealed[:20])
    with pytest.raises(SecretUnavailable, match="format version 9"):
        Envelope.from_bytes(b"\x09" + sealed[1:])


def test_the_key_file_is_made_once_owner_only(key_file: KeyFile) -> None:
    errors: list[BaseException] = []
    files = [KeyFile(key_file.path) for _ in range(8)]

    def make(k: KeyFile) -> None:
        try:
            k.ensure()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=make, args=(k,)) for k in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert stat.S_IMODE(key_file.path.stat().st_mode) == 0o600
    assert [p.name for p in key_file.path.parent.iterdir()] == ["secrets.key"]  # no drafts left
    # every one of them ended up with the same key: what one seals, another opens
    sealed = SecretBox(files[0]).seal("shared", CONTEXT)
    assert all(SecretBox(k).open(sealed, CONTEXT) == "shared" for k in files)


def test_a_key_file_others_can_read_or_a_broken_one_is_refused(key_file: KeyFile, tmp_path: Path) -> None:
    key_file.ensure()
    os.chmod(key_file.path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        SecretBox(KeyFile(key_file.path)).seal("x", CONTEXT)
    broken = tmp_path / "broken.key"
    broken.write_text("not a key\n")
    broken.chmod(0o600)
    with pytest.raises(ConfigError, match="256-bit"):
        KeyFile(broken).ensure()


def test_a_value_sealed_under_another_key_says_which_key_file(tmp_path: Path) -> None:
    sealed = SecretBox(KeyFile(tmp_path / "a.key")).seal("x", CONTEXT)
    with pytest.raises(SecretUnavailable, match=r"b\.key"):
        SecretBox(KeyFile(tmp_path / "b.key")).open(sealed, CONTEXT)


def test_an_unconfigured_box_says_what_to_configure() -> None:
    box = SecretBox(Unconfigured("set O_SECRETS_KMS_KEY_ID"))
    with pytest.raises(SecretUnavailable, match="O_SECRETS_KMS_KEY_ID") as raised:
        box.seal("x", CONTEXT)
    assert raised.value.status_code == 503


def test_plan_variables_keeps_masked_values_and_refuses_a_mask_for_a_new_name() -> None:
    fresh, keep = plan_variables({"A": "new", "B": MASKED}, stored={"B", "C"})
    assert fresh == {"A": "new"} and keep == {"B"}
    with pytest.raises(InvalidInput, match="'D'"):
        plan_variables({"D": MASKED}, stored={"B"})
    with pytest.raises(InvalidInput, match="environment variable name"):
        plan_variables({"1BAD": "x"}, stored=set())


def test_the_composition_root_picks_the_key_file_locally_and_nothing_on_a_lambda_without_kms(tmp_path: Path) -> None:
    from o import runtime
    from o.config import settings_from

    local = runtime.secret_box(settings_from({"O_DATA_DIR": str(tmp_path)}))
    assert isinstance(local.wrapper, KeyFile) and local.wrapper.path == tmp_path / "secrets.key"
    named = runtime.secret_box(settings_from({"O_SECRETS_KEY_FILE": str(tmp_path / "shared.key")}))
    assert isinstance(named.wrapper, KeyFile) and named.wrapper.path == tmp_path / "shared.key"
    on_lambda = runtime.secret_box(settings_from({"O_RUNTIME": "lambda"}))
    with pytest.raises(SecretUnavailable, match="O_SECRETS_KMS_KEY_ID"):
        on_lambda.seal("x", CONTEXT)
    assert not (tmp_path / "secrets.key").exists()  # made on first use (or by `o serve`), not by picking
