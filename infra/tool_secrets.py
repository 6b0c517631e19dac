"""The KMS key that seals the agents' tool secrets (o/tools/secrets, o/aws/kms.py).

Values are sealed with data keys this key makes (``GenerateDataKey``) and stores wrapped beside them;
a function that runs tools unwraps them (``Decrypt``). Each function is granted only what it does,
and only with the tool-secrets encryption context, so the key cannot be used for anything else
through these roles. The key rotates yearly (old versions keep opening what they sealed) and is
kept when the stack is deleted: the database's final snapshot holds secrets only it can open.

KMS is called rarely (a data key per warm environment that writes secrets, an unwrap per data key per
environment that runs tools), so it goes through the NAT rather than a paid interface endpoint.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from o.config import TOOL_SECRETS_KMS_CONTEXT, env_name


class ToolSecrets(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="O: wraps the data keys that seal agents' tool secrets",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )

    def environment(self) -> dict[str, str]:
        return {env_name("secrets", "kms_key_id"): self.key.key_arn}

    def _grant(self, grantee: iam.IGrantable, action: str) -> None:
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[action],
                resources=[self.key.key_arn],
                conditions={
                    "StringEquals": {f"kms:EncryptionContext:{k}": v for k, v in TOOL_SECRETS_KMS_CONTEXT.items()}
                },
            )
        )

    def grant_seal(self, grantee: iam.IGrantable) -> None:
        """May seal new values (a fresh data key from KMS), not open stored ones."""
        self._grant(grantee, "kms:GenerateDataKey")

    def grant_open(self, grantee: iam.IGrantable) -> None:
        """May open stored values for a tool run."""
        self._grant(grantee, "kms:Decrypt")
