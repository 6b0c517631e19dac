"""What a sandbox is given and what it gives back, independent of where the code runs.

Both shapes cross a process boundary (a pipe locally, a Lambda payload on AWS), so each
has a plain-dict form; nothing here imports anything that runs tool code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

Status = Literal["success", "error", "timeout", "limit_exceeded"]
STATUSES: tuple[str, ...] = ("success", "error", "timeout", "limit_exceeded")


@dataclass(frozen=True)
class Limits:
    """Ceilings for one tool run. Small defaults: a tool is a function call, not a job."""

    cpu_seconds: int = 10
    memory_bytes: int = 512 * 1024 * 1024
    wall_seconds: float = 30.0
    open_files: int = 64
    processes: int = 16
    # stdout + stderr together; the run is stopped as soon as this is exceeded
    output_bytes: int = 1024 * 1024
    # largest single file the tool may write, and the size of its private /tmp when
    # the filesystem is isolated
    file_bytes: int = 16 * 1024 * 1024
    disk_bytes: int = 64 * 1024 * 1024

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Limits:
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class ToolInvocation:
    source_code: str
    function_name: str
    args: dict[str, Any] = field(default_factory=dict)
    # only the tool's own variables (the agent's tool secrets); never the server's
    env: dict[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    # the longest func_return handed back to the agent, in characters
    return_char_limit: int = 6000

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_code": self.source_code,
            "function_name": self.function_name,
            "args": self.args,
            "env": self.env,
            "limits": self.limits.to_dict(),
            "return_char_limit": self.return_char_limit,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolInvocation:
        return cls(
            source_code=str(data["source_code"]),
            function_name=str(data["function_name"]),
            args=dict(data.get("args") or {}),
            env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
            limits=Limits.from_dict(data.get("limits")),
            return_char_limit=int(data.get("return_char_limit", 6000)),
        )


@dataclass(frozen=True)
class ToolResult:
    status: Status
    # what the agent sees as the tool's return (the value, or the error message)
    func_return: str
    stdout: str = ""
    stderr: str = ""
    # one sentence for the agent and the logs: what happened
    message: str = ""
    duration_ms: float = 0.0
    # which isolation was in force for this run, e.g. ("netns", "mountns", "uid", "rlimits")
    isolation: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["isolation"] = list(self.isolation)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolResult:
        status = data.get("status")
        if status not in STATUSES:
            raise ValueError(f"unknown tool result status: {status!r}")
        return cls(
            status=status,
            func_return=str(data.get("func_return", "")),
            stdout=str(data.get("stdout", "")),
            stderr=str(data.get("stderr", "")),
            message=str(data.get("message", "")),
            duration_ms=float(data.get("duration_ms", 0.0)),
            isolation=tuple(data.get("isolation") or ()),
        )


class Sandbox(Protocol):
    """Runs one tool call somewhere other than the calling process."""

    def run(self, invocation: ToolInvocation) -> ToolResult: ...


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, saying so, so the agent knows it saw a part."""
    if len(text) <= limit:
        return text
    note = f"... [truncated: {len(text)} characters, limit {limit}]"
    keep = max(0, limit - len(note))
    return text[:keep] + note
