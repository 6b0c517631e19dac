"""Telling owners of promotions and rollbacks: an event per decision, on EventBridge (AWS) or a webhook.

The event is the decision as the owner reads it (which agent, which revisions, promoted or rolled
back and why). On AWS it goes to an EventBridge bus (:class:`o.aws.events.EventBridgeEvents`), where
owners route it with rules; locally it is POSTed as JSON to the webhook URL of the agent's owner
policy, through the outbound URL policy (:mod:`o.net`) like every other call O makes. A failed
notice is logged, never raised: the decision is already made and recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from o.net.outbound import OutboundPolicy
from o.net.transport import http_client
from o.store.evolution import Evolution

SOURCE = "o.evolution"


def decision_event(evo: Evolution) -> tuple[str, dict[str, Any]]:
    """(detail type, detail) of a decided evolution."""
    assert evo.decision is not None
    detail_type = "Evolution promoted" if evo.decision.value == "promoted" else "Evolution rolled back"
    detail = {
        "evolution_id": evo.id,
        "organization_id": evo.organization_id,
        "agent_id": evo.agent_id,
        "decision": evo.decision.value,
        "reason": evo.reason,
        "base_revision": evo.base_revision,
        "candidate_revision": evo.candidate_revision,
        "completed_at": evo.completed_at.isoformat() if evo.completed_at else None,
    }
    return detail_type, detail


class DecisionEvents(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any], webhook_url: str | None) -> None:
        """Tell the owner of a decision (``webhook_url``: the owner policy's, where the adapter uses one)."""
        ...


@dataclass(frozen=True)
class Webhook:
    """The local adapter: POST ``{"source", "detail-type", "detail"}`` to the owner's webhook URL."""

    outbound: OutboundPolicy
    timeout_s: float = 5.0

    def publish(self, detail_type: str, detail: dict[str, Any], webhook_url: str | None) -> None:
        if webhook_url is None:
            return
        body = {"source": SOURCE, "detail-type": detail_type, "detail": detail}
        with http_client(self.outbound) as client:
            client.post(webhook_url, json=body, timeout=self.timeout_s).raise_for_status()
