"""The local :class:`~o.tools.secrets.envelope.KeyWrapper`: a key file in the data directory.

The file holds a 256-bit key-encryption key (base64, one line), readable by its owner only (0600).
`o serve` makes it on its first start; every process of that server (the workers too) reads the same
file. Data keys are wrapped with it by AES-256-GCM. Losing the file loses the secrets sealed under
it (the tools' variables must then be set again); copying it to another machine that serves the same
database is how two servers share secrets (``O_SECRETS_KEY_FILE`` names it).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
import stat
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from o.config import ConfigError
from o.tools.secrets.envelope import KEY_BYTES, NONCE_BYTES, DataKey, SecretUnavailable

# what a wrapped data key is bound to, so no other AES-GCM output under this key passes for one
_WRAP_CONTEXT = b"o/data-key"


class KeyFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def ensure(self) -> Path:
        """Make the key file if it does not exist yet (atomically: concurrent starts agree on one key)."""
        self._load()
        return self.path

    def new_data_key(self) -> DataKey:
        plaintext = os.urandom(KEY_BYTES)
        nonce = os.urandom(NONCE_BYTES)
        return DataKey(plaintext, nonce + AESGCM(self._load()).encrypt(nonce, plaintext, _WRAP_CONTEXT))

    def unwrap(self, wrapped: bytes) -> bytes:
        nonce, body = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
        try:
            return AESGCM(self._load()).decrypt(nonce, body, _WRAP_CONTEXT)
        except (InvalidTag, ValueError):
            raise SecretUnavailable(
                f"a tool secret was sealed under another key than {self.path}: use the key file of the server "
                "that stored it (O_SECRETS_KEY_FILE), or set the tool variables again"
            ) from None

    def _load(self) -> bytes:
        with self._lock:
            if self._key is None:
                if not self.path.exists():
                    _create(self.path)
                self._key = _read(self.path)
            return self._key


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = base64.b64encode(os.urandom(KEY_BYTES)).decode() + "\n"
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    # O_EXCL with mode 0600: the key is never readable by others, not even for a moment
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        # link() fails if the name exists: of two processes starting at once, the first one's key wins
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)


def _read(path: Path) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"invalid configuration: the secrets key file {path} is readable by other users (mode {mode:04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        key = base64.b64decode(path.read_text().strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(f"invalid configuration: the secrets key file {path} does not hold a 256-bit base64 key")
    return key
