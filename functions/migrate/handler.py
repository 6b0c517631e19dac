"""CloudFormation custom resource: apply the schema migrations on every deploy.

Create and Update run ``o.store.migrate.migrate`` against the database behind the RDS
Proxy; Delete does nothing (tearing the stack down must never drop data by itself).
The response goes to CloudFormation's pre-signed URL from this code, so no provider
framework function is needed, and it is always sent — also on failure and shortly
before the function would time out — because an unanswered custom resource blocks
the stack for an hour.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from typing import Any

from aws_lambda_powertools import Logger

from o.store.aws_url import database_url_from_secret
from o.store.migrate import migrate

logger = Logger(service="o-migrate")

PHYSICAL_ID = "o-schema-migrations"
# Time kept back to send the response before Lambda ends the invocation.
_RESPONSE_MARGIN_MS = 10_000
_REASON_LIMIT = 3_000


def database_url() -> str:
    """The target database: a direct URI (local runs) or the proxy host + RDS secret."""
    direct = os.environ.get("O_DATABASE_URL")
    if direct:
        return direct
    return database_url_from_secret(
        os.environ["O_DB_HOST"], os.environ["O_DB_SECRET_ARN"], os.environ.get("O_DB_NAME", "o")
    )


def send_response(
    event: dict[str, Any], status: str, reason: str, data: dict[str, Any] | None = None
) -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:_REASON_LIMIT],
            "PhysicalResourceId": event.get("PhysicalResourceId") or PHYSICAL_ID,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data or {},
        }
    ).encode()
    # The pre-signed S3 URL is signed for an empty content type.
    request = urllib.request.Request(
        event["ResponseURL"],
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def _apply(result: dict[str, Any]) -> None:
    try:
        result["applied"] = migrate(database_url())
    except Exception as exc:  # reported to CloudFormation, which rolls the deploy back
        logger.exception("migration failed")
        result["error"] = f"{type(exc).__name__}: {exc}"


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> None:
    request_type = event.get("RequestType")
    logger.info("custom resource request", extra={"request_type": request_type})
    if request_type == "Delete":
        send_response(event, "SUCCESS", "nothing to do on delete")
        return
    if request_type not in ("Create", "Update"):
        send_response(event, "FAILED", f"unknown RequestType {request_type!r}")
        return

    result: dict[str, Any] = {}
    worker = threading.Thread(target=_apply, args=(result,), daemon=True)
    worker.start()
    remaining_ms = context.get_remaining_time_in_millis() if context is not None else 900_000
    worker.join(max(1.0, (remaining_ms - _RESPONSE_MARGIN_MS) / 1000))

    if worker.is_alive():
        send_response(event, "FAILED", "migrations did not finish before the function timeout")
    elif "error" in result:
        send_response(event, "FAILED", f"migrations failed: {result['error']}")
    else:
        applied: list[str] = result["applied"]
        logger.info("migrations applied", extra={"applied": applied})
        send_response(
            event,
            "SUCCESS",
            f"applied {len(applied)} migration(s)",
            {"Applied": ",".join(applied) or "none"},
        )
