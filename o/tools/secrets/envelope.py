"""Envelope encryption of tool secrets.

A value is sealed with AES-256-GCM under a *data key*; the data key is stored beside it, wrapped by a
:class:`KeyWrapper` (KMS on AWS, the key file locally), which alone can unwrap it. The sealed form is
self-describing bytes, so it can be opened by any process holding the same wrapper:

    version (1 byte) | length of the wrapped key (2 bytes, big-endian) | wrapped key | nonce (12) | ciphertext+tag

Each value is bound to the place it is stored (the *context*, GCM's associated data: the agent and the
variable's name), so a sealed value copied into another row does not open there. One data key seals
many values (a new one every ``data_key_uses`` seals, far below GCM's limit for random nonces), and
unwrapped data keys are remembered: a warm process opens a secret with no call to KMS.
"""

from __future__ import annotations

import os
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from o.errors import OError

# how a tool variable's sealed value is shown in every response: never the value, never its sealed form
MASKED = "********"

VERSION = 1
NONCE_BYTES = 12
KEY_BYTES = 32
_HEADER = struct.Struct(">BH")


class SecretUnavailable(OError):
    """A secret cannot be sealed or opened: the key service failed, or the value was sealed under
    another key (or altered)."""

    status_code = 503
    code = "secret_unavailable"


@dataclass(frozen=True)
class DataKey:
    plaintext: bytes
    # the same key encrypted by the key wrapper; stored with every value it seals
    wrapped: bytes


class KeyWrapper(Protocol):
    """The port: where data keys come from (KMS ``GenerateDataKey`` or the local key file)."""

    def new_data_key(self) -> DataKey: ...

    def unwrap(self, wrapped: bytes) -> bytes: ...


class Unconfigured:
    """A key wrapper for a process that must not hold secrets (a Lambda without a KMS key): every use
    says what to configure."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def new_data_key(self) -> DataKey:
        raise SecretUnavailable(self.reason)

    def unwrap(self, wrapped: bytes) -> bytes:
        raise SecretUnavailable(self.reason)


# -- the sealed form (pure) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes

    def to_bytes(self) -> bytes:
        return _HEADER.pack(VERSION, len(self.wrapped_key)) + self.wrapped_key + self.nonce + self.ciphertext

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        if len(data) < _HEADER.size:
            raise SecretUnavailable("a sealed secret is truncated")
        version, key_length = _HEADER.unpack_from(data)
        if version != VERSION:
            raise SecretUnavailable(f"a sealed secret has format version {version}; this release reads {VERSION}")
        start = _HEADER.size + key_length
        if len(data) < start + NONCE_BYTES + 16:
            raise SecretUnavailable("a sealed secret is truncated")
        return cls(data[_HEADER.size : start], data[start : start + NONCE_BYTES], data[start + NONCE_BYTES :])


def variable_context(agent_id: str, name: str) -> bytes:
    """What a tool variable's sealed value is bound to: its agent and its name."""
    return f"o/agent_tool_env/{agent_id}/{name}".encode()


# -- the box ------------------------------------------------------------------------------------------------


class SecretBox:
    """Seals and opens secrets with data keys from ``wrapper``; safe to share between threads."""

    def __init__(self, wrapper: KeyWrapper, *, data_key_uses: int = 100_000, remembered_keys: int = 256) -> None:
        self.wrapper = wrapper
        self.data_key_uses = data_key_uses
        self.remembered_keys = remembered_keys
        self._lock = threading.Lock()
        self._current: DataKey | None = None
        self._uses = 0
        self._unwrapped: OrderedDict[bytes, bytes] = OrderedDict()

    def seal(self, plaintext: str, context: bytes) -> bytes:
        key = self._data_key()
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(key.plaintext).encrypt(nonce, plaintext.encode(), context)
        return Envelope(key.wrapped, nonce, ciphertext).to_bytes()

    def open(self, sealed: bytes, context: bytes) -> str:
        envelope = Envelope.from_bytes(bytes(sealed))
        key = self._unwrap(envelope.wrapped_key)
        try:
            return AESGCM(key).decrypt(envelope.nonce, envelope.ciphertext, context).decode()
        except InvalidTag:
            raise SecretUnavailable("a sealed secret does not open here: it was altered or moved") from None

    def _data_key(self) -> DataKey:
        with self._lock:
            if self._current is None or self._uses >= self.data_key_uses:
                self._current = self.wrapper.new_data_key()
                self._uses = 0
                self._remember(self._current.wrapped, self._current.plaintext)
            self._uses += 1
            return self._current

    def _unwrap(self, wrapped: bytes) -> bytes:
        with self._lock:
            known = self._unwrapped.get(wrapped)
            if known is not None:
                self._unwrapped.move_to_end(wrapped)
                return known
        # outside the lock: a KMS call must not stall the other threads' seals and opens
        plaintext = self.wrapper.unwrap(wrapped)
        if len(plaintext) != KEY_BYTES:
            raise SecretUnavailable("the key service returned a data key of the wrong size")
        with self._lock:
            self._remember(wrapped, plaintext)
        return plaintext

    def _remember(self, wrapped: bytes, plaintext: bytes) -> None:
        self._unwrapped[wrapped] = plaintext
        while len(self._unwrapped) > self.remembered_keys:
            self._unwrapped.popitem(last=False)
