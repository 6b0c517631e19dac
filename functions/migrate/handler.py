"""Deploy-time database work: the migrations custom resource, and creating an API key.

As a CloudFormation custom resource (the event has ``RequestType``): Create and Update
run ``o.store.migrate.migrate`` against the database behind the RDS Proxy; Delete does
nothing (tearing the stack down must never drop data by itself).
The response goes to CloudFormation's pre-signed URL from this code, so no provider
framework function is needed, and it is always sent — also on failure and shortly
before the function would time out — because an unanswered custom resource blocks
the stack for an hour.

Invoked directly by an operator with ``{"action": "create_api_key", "org": "default",
"name": "first"}`` it creates an API key and returns it once. This function is the only
way into the private database from outside the VPC, so the first key of a fresh
deployment is made here; who may invoke it is decided by IAM.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

from o import runtime
from o.config import ConfigError, build_settings
from o.observability import logger
from o.store import orgs
from o.store.db import Database
from o.store.migrate import migrate

PHYSICAL_ID = "o-schema-migrations"
# Time kept back to send the response before Lambda ends the invocation.
_RESPONSE_MARGIN_MS = 10_000
_REASON_LIMIT = 3_000


def database_url() -> str:
    """The target database: a direct URI (local runs) or the proxy host + RDS secret."""
    # read at each call: the function runs once per deployment, and an operator may change its settings
    url = runtime.configured_database_url(build_settings())
    if url is None:
        raise ConfigError("invalid configuration: set O_DATABASE_URL or O_DB_SECRET_ARN and O_DB_HOST")
    return url


def send_response(event: dict[str, Any], status: str, reason: str, data: dict[str, Any] | None = None) -> None:
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


def create_api_key(org: str, name: str | None) -> dict[str, str]:
    db = Database(database_url(), min_size=1, max_size=1, prepared_statements=False).open()
    try:
        with db.transaction() as conn:
            organization = orgs.get_or_create_org(conn, org)
            key_id, secret = orgs.create_api_key(conn, organization["id"], name)
    finally:
        db.close()
    logger.info("api key created", extra={"key_id": key_id, "organization_id": organization["id"]})
    return {"api_key": secret, "key_id": key_id, "organization_id": organization["id"]}


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
    if "RequestType" not in event:
        return _operator_action(event)
    _custom_resource(event, context)
    return None


def _operator_action(event: dict[str, Any]) -> dict[str, Any]:
    action = event.get("action")
    if action == "create_api_key":
        org = event.get("org") or "default"
        if not isinstance(org, str) or len(org) > 200:
            return {"error": "org must be a name of at most 200 characters"}
        return create_api_key(org, event.get("name"))
    if action == "migrate":
        return {"applied": migrate(database_url())}
    return {"error": f"unknown action {action!r}; expected create_api_key or migrate"}


def _custom_resource(event: dict[str, Any], context: Any) -> None:
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
