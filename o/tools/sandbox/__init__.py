"""Where tool code runs: never in the API or step process.

``sandbox_from_settings()`` picks the implementation from the environment:
``O_SANDBOX=local`` (default) runs each call in a confined child process;
``O_SANDBOX=lambda`` invokes the sandbox Lambda named by ``O_SANDBOX_FUNCTION_NAME`` (or
``O_TOOL_SANDBOX_FUNCTION_ARN``, as the CDK stack sets it; when either is set and
``O_SANDBOX`` is not, the Lambda sandbox is chosen).
See README.md in this folder for what is and is not isolated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from o.tools.sandbox.base import Limits, Sandbox, ToolInvocation, ToolResult
from o.tools.sandbox.lambda_sandbox import LambdaSandbox
from o.tools.sandbox.local import LocalProcessSandbox

__all__ = [
    "LambdaSandbox",
    "Limits",
    "LocalProcessSandbox",
    "Sandbox",
    "SandboxSettings",
    "ToolInvocation",
    "ToolResult",
    "sandbox_from_settings",
]


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="O_", extra="ignore", frozen=True)

    # unset: "lambda" when a sandbox function is configured, else "local"
    sandbox: Literal["local", "lambda"] | None = None
    # a function name or ARN; the CDK stack sets O_TOOL_SANDBOX_FUNCTION_ARN
    sandbox_function_name: str | None = Field(
        default=None, validation_alias=AliasChoices("O_SANDBOX_FUNCTION_NAME", "O_TOOL_SANDBOX_FUNCTION_ARN")
    )
    sandbox_region: str | None = None
    # the longest wall time any tool may ask for; the Lambda client waits this long
    sandbox_max_wall_seconds: float = Field(default=60.0, gt=0)
    # where the local sandbox makes its per-run working directories (default: the system temp dir)
    sandbox_workdir: Path | None = None
    # set false only for debugging: runs still get resource limits but no namespaces or private uid
    sandbox_isolate: bool = True
    # let local tool runs use the host's network (off: a private namespace with no interfaces)
    sandbox_allow_network: bool = False

    @model_validator(mode="after")
    def _lambda_needs_name(self) -> SandboxSettings:
        if self.sandbox == "lambda" and not self.sandbox_function_name:
            raise ValueError("O_SANDBOX=lambda needs O_SANDBOX_FUNCTION_NAME")
        return self

    @property
    def kind(self) -> Literal["local", "lambda"]:
        if self.sandbox is not None:
            return self.sandbox
        return "lambda" if self.sandbox_function_name else "local"


def sandbox_from_settings(settings: SandboxSettings | None = None) -> Sandbox:
    settings = settings or SandboxSettings()
    if settings.kind == "lambda":
        assert settings.sandbox_function_name
        return LambdaSandbox(
            settings.sandbox_function_name,
            region_name=settings.sandbox_region,
            max_wall_seconds=settings.sandbox_max_wall_seconds,
        )
    return LocalProcessSandbox(
        workdir_root=settings.sandbox_workdir,
        isolate=settings.sandbox_isolate,
        allow_network=settings.sandbox_allow_network,
    )
