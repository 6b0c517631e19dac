"""Settings of the tools that reach past the agent's own memory: the sandbox user code runs in, the
outside-world built-ins (o/tools/web), folders' files and MCP servers. Part of :class:`o.config.Settings`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from o.config.base import Group, env


def _env_name(group: str, field: str) -> str:
    from o.config import env_name  # the names are the whole Settings' (o.config imports this module)

    return env_name(group, field)


class SandboxSettings(Group):
    """Where user tools run: a local confined process, or the sandbox Lambda."""

    # unset: "lambda" when a sandbox function is configured, else "local"
    kind: Literal["local", "lambda"] | None = env("O_SANDBOX", default=None)
    # a function name or ARN (the CDK stack sets the ARN)
    function_name: str | None = None
    region: str | None = None
    # the longest wall time any tool may ask for; the Lambda client waits this long
    max_wall_seconds: float = Field(default=60.0, gt=0)
    # where the local sandbox makes its per-run working directories (default: the system temp dir)
    workdir: Path | None = None
    # set false only for debugging: runs still get resource limits but no namespaces or private uid
    isolate: bool = True
    # let local tool runs use the host's network (off: a private namespace with no interfaces)
    allow_network: bool = False
    # the sandbox Lambda's writable scratch space, emptied after every call
    scratch: Path = Path("/tmp")

    @model_validator(mode="after")
    def _lambda_needs_name(self) -> SandboxSettings:
        if self.kind == "lambda" and not self.function_name:
            raise ValueError(f"O_SANDBOX_KIND=lambda needs {_env_name('sandbox', 'function_name')}")
        return self

    @property
    def uses_lambda(self) -> bool:
        return self.kind == "lambda" if self.kind is not None else bool(self.function_name)


class WebSettings(Group):
    """The built-in outside-world tools (o/tools/web): fetch_webpage's caps and web_search's provider."""

    # exa or tavily (keyed: EXA_API_KEY / TAVILY_API_KEY) or searxng (a self-hosted instance); unset: no web_search
    search_provider: Literal["exa", "tavily", "searxng"] | None = None
    # the operator's search endpoint (searxng: required; exa/tavily: their own API unless set)
    search_url: str | None = None
    search_timeout_s: float = Field(default=15.0, gt=0)
    # fetch_webpage: the largest body read, the whole fetch's time, redirects followed, Markdown returned
    fetch_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    fetch_timeout_s: float = Field(default=15.0, gt=0)
    fetch_max_redirects: int = Field(default=5, ge=0, le=20)
    fetch_max_chars: int = Field(default=50_000, ge=100)
    # run_code: what one run may use (the sandbox's limits)
    code_wall_seconds: float = Field(default=30.0, gt=0)
    code_memory_mb: int = Field(default=512, ge=64)

    @model_validator(mode="after")
    def _searxng_needs_url(self) -> WebSettings:
        if self.search_provider == "searxng" and not self.search_url:
            raise ValueError(f"O_WEB_SEARCH_PROVIDER=searxng needs {_env_name('web', 'search_url')}")
        return self


# uploaded bundles and exports stay this long (their URLs expire long before): on AWS a bucket lifecycle
# rule removes them (infra/files.py), locally `o serve`'s transfer worker does
TRANSFER_KEPT_DAYS = 7


class FileSettings(Group):
    """Folders' files: upload limits, where the original bytes go, and ingestion."""

    max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1024, description="largest file upload")
    org_quota_bytes: int = Field(default=1024**3, ge=0, description="bytes of files one organization may store")
    # an S3 bucket (AWS) for the original bytes; unset: <data dir>/files
    bucket: str | None = None
    # the SQS queue uploads are announced on (AWS; the ingest function consumes it)
    ingest_queue_url: str | None = None
    # a worker's hold on a file it processes; a crashed worker's file is taken again after this
    lease_seconds: float = Field(default=300.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    # deliveries of an ingest queue message before SQS moves it to the dead-letter queue (AWS: the
    # queue's redrive policy, infra/files.py); what a job or file given up on says it was given
    max_receives: int = Field(default=5, ge=1)
    # the `o serve` ingestion worker looks for files other processes took in this often
    poll_seconds: float = Field(default=2.0, gt=0)
    # upload sessions (POST /v1/uploads/): the largest folder file sent that way (past the direct
    # upload's max_upload_bytes, which on AWS is what API Gateway and Lambda can carry), and how long
    # an upload URL (or an export's download URL) stays valid
    max_session_bytes: int = Field(default=512 * 1024 * 1024, ge=1024, description="largest file upload session")
    transfer_expires_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)


class McpSettings(Group):
    """MCP servers (o/tools/mcp): which kinds may be registered, and how long their calls may take."""

    # run stdio servers (a command on this machine); unset: yes locally, no on AWS (a command on the
    # API Lambda would run in a function that lives for one request)
    stdio: bool | None = None
    # connecting and listing a server's tools (create, refresh) must finish within this
    connect_timeout_s: float = Field(default=10.0, gt=0)
    # one tool call, after which it is cancelled and the model reads a tool error
    call_timeout_s: float = Field(default=60.0, gt=0)
    # the most characters of one result kept before the tool's own return_char_limit is applied
    max_result_chars: int = Field(default=200_000, ge=100)

    def stdio_allowed(self, runtime: str) -> bool:
        return self.stdio if self.stdio is not None else runtime != "lambda"
