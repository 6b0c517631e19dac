"""The AWS :class:`~o.tools.secrets.envelope.KeyWrapper`: data keys from KMS.

``GenerateDataKey`` gives a fresh AES-256 key in the clear and wrapped under the stack's KMS key;
``Decrypt`` unwraps a stored one. The key material never leaves KMS, so the database alone (a dump,
a snapshot, a read replica) reveals no tool secret, and IAM decides which functions may unwrap.
The encryption context names the purpose, so a data key made for tool secrets opens nothing else
(and CloudTrail shows what each call was for).
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from o.config import TOOL_SECRETS_KMS_CONTEXT
from o.tools.secrets.envelope import DataKey, SecretUnavailable

ENCRYPTION_CONTEXT = TOOL_SECRETS_KMS_CONTEXT


class KmsKeyWrapper:
    def __init__(self, key_id: str, *, client: Any | None = None, region_name: str | None = None) -> None:
        self.key_id = key_id
        self._client = client
        self._region_name = region_name

    @property
    def client(self) -> Any:
        # made on first use: a Lambda whose requests never touch a secret never builds it
        if self._client is None:
            self._client = boto3.client(
                "kms", region_name=self._region_name, config=Config(connect_timeout=5, read_timeout=10)
            )
        return self._client

    def new_data_key(self) -> DataKey:
        try:
            answer = self.client.generate_data_key(
                KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=ENCRYPTION_CONTEXT
            )
        except (BotoCoreError, ClientError) as exc:
            raise SecretUnavailable(f"KMS could not make a data key with {self.key_id}: {exc}") from exc
        return DataKey(bytes(answer["Plaintext"]), bytes(answer["CiphertextBlob"]))

    def unwrap(self, wrapped: bytes) -> bytes:
        try:
            answer = self.client.decrypt(
                CiphertextBlob=wrapped, KeyId=self.key_id, EncryptionContext=ENCRYPTION_CONTEXT
            )
        except (BotoCoreError, ClientError) as exc:
            raise SecretUnavailable(f"KMS could not unwrap a tool secret's data key: {exc}") from exc
        return bytes(answer["Plaintext"])
