"""What one sleep-time pass did: the figures it records and returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class PassResult:
    id: str
    agent_id: str
    trigger: str
    status: str
    blocks_rewritten: list[str] = field(default_factory=list)
    facts_recorded: int = 0
    duplicates_removed: int = 0
    tool_calls: int = 0
    tokens: int = 0
    seconds: float = 0.0
    through_seq: int = 0
    evolution_id: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def figures(self) -> dict[str, Any]:
        """The figures a pass row keeps (everything but its identity, status and error)."""
        return {k: v for k, v in self.as_dict().items() if k not in ("id", "agent_id", "trigger", "status", "error")}
