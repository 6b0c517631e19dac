"""Deploy-time database work: the migrations custom resource, and creating an API key.

As a CloudFormation custom resource (the event has ``RequestType``): Create and Update
run what ``o migrate`` runs (``runtime.upgrade``: the pending migrations, the app role and its
grants, then sealing tool variables an earlier release stored in plaintext, with KMS here) against
the database itself, as its owner (the RDS secret); Delete does nothing (tearing the stack down must
never drop data by itself).
On a first deploy the database may not be reachable yet when this runs (a new RDS Proxy
registers its target minutes after it exists, a new endpoint's DNS name may not resolve
yet): such failures are tried again with exponential backoff (:func:`retry_delay`) until
shortly before the function's timeout; anything else fails at once.
The response goes to CloudFormation's pre-signed URL from this code (``o.aws.cloudformation.respond``),
so no provider framework function is needed, and it is always sent — also on failure and shortly
before the function would time out, with the last error — because an unanswered custom
resource blocks the stack (``infra/migrations.py`` also bounds CloudFormation's wait).

Invoked directly by an operator with ``{"action": "create_api_key", "org": "default",
"name": "first"}`` it creates an API key and returns it once. This function is the only
way into the private database from outside the VPC, so the first key of a fresh
deployment is made here; who may invoke it is decided by IAM.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from o import runtime
from o.aws.cloudformation import respond
from o.config import ConfigError, Settings, build_settings
from o.observability import logger
from o.store import orgs
from o.store.db import probe
from o.store.errors import OperationalError

PHYSICAL_ID = "o-schema-migrations"
# Time kept back to send the response before Lambda ends the invocation.
_RESPONSE_MARGIN_MS = 10_000
# Each connection attempt gives up after this long (libpq's connect_timeout): a packet dropped on the way
# would otherwise hold an attempt for minutes.
CONNECT_TIMEOUT_S = 10
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 20.0
# Server codes that say "not now" rather than "no": connection exceptions, starting up, shutting down,
# too many connections.
_TRANSIENT_CODES = ("08", "57P01", "57P02", "57P03", "53300")
# What a server that is up answers when it refuses for a reason time does not cure. libpq reports a refusal
# at connect time without its SQLSTATE, so the text is all there is.
_REFUSALS = ("does not exist", "password authentication failed", "no pg_hba.conf entry", "permission denied")


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the database could not be reached (yet), as opposed to refusing or failing.

    A connection error's ``sqlstate`` is ``None`` when the server never answered (refused, timed out,
    name not resolved, connection lost).
    """
    if not isinstance(error, OperationalError) or any(refusal in str(error) for refusal in _REFUSALS):
        return False
    code = error.sqlstate
    return code is None or str(code).startswith(_TRANSIENT_CODES)


def retry_delay(error: BaseException, attempt: int, remaining_s: float) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None: give up (a real failure, or no time left).

    Exponential backoff from FIRST_DELAY_S, capped at MAX_DELAY_S; the wait must end before the time left.
    """
    if not unreachable(error):
        return None
    delay = min(MAX_DELAY_S, FIRST_DELAY_S * 2**attempt)
    return delay if delay < remaining_s else None


def with_connect_timeout(url: str, seconds: int = CONNECT_TIMEOUT_S) -> str:
    """``url`` (a libpq URI or key=value string) with a connect timeout, unless it sets one."""
    if "connect_timeout" in url:
        return url
    if url.startswith(("postgresql://", "postgres://")):
        return f"{url}{'&' if '?' in url else '?'}connect_timeout={seconds}"
    return f"{url} connect_timeout={seconds}"


@dataclass
class Outcome:
    """What the migration worker got to, read by the thread that answers CloudFormation."""

    applied: list[str] | None = None
    error: str | None = None
    attempts: int = 0
    last_error: str | None = None
    started: float = field(default_factory=time.monotonic)

    def failure(self, what: str) -> str:
        if self.attempts <= 1 or self.last_error is None:
            return what
        waited = time.monotonic() - self.started
        return f"{what}; the database was not reachable after {self.attempts} attempts in {waited:.0f} s"


def owner_settings() -> Settings:
    """The settings with the target database resolved once: a direct URI (local runs) or the database host
    + the owner's RDS secret, read at each call (the function runs once per deployment, the secret rotates),
    with a connect timeout on every attempt."""
    settings = build_settings()
    url = runtime.configured_database_url(settings)
    if url is None:
        raise ConfigError("invalid configuration: set O_DATABASE_URL or O_DB_SECRET_ARN and O_DB_HOST")
    return settings.model_copy(update={"database_url": with_connect_timeout(url)})


def upgrade(settings: Settings) -> list[str]:
    """What `o migrate` does, on ``settings``' database; the migrations applied."""
    rt = runtime.start(settings, migrate_schema=False)
    try:
        applied, sealed = runtime.upgrade(rt)
    finally:
        rt.close()
    if sealed:
        logger.info("sealed tool variables stored in plaintext", extra={"sealed": sealed})
    return applied


def answer(event: dict[str, Any], status: str, reason: str, data: dict[str, Any] | None = None) -> None:
    """CloudFormation's answer, through the outbound policy like every other call."""
    policy = runtime.outbound_policy(build_settings())
    respond(event, status, reason, event.get("PhysicalResourceId") or PHYSICAL_ID, data, policy=policy)


def _apply(outcome: Outcome, deadline: float) -> None:
    """Migrate, trying again while the database is not reachable and time is left before ``deadline``."""
    attempt = 0
    while True:
        outcome.attempts = attempt + 1
        try:
            settings = owner_settings()
            assert settings.database_url is not None
            # one plain connection first: a database not reachable yet fails here at once, not after the
            # pool's whole opening timeout
            probe(settings.database_url)
            outcome.applied = upgrade(settings)
            return
        except Exception as exc:  # reported to CloudFormation, which rolls the deploy back
            outcome.last_error = f"{type(exc).__name__}: {exc}"
            delay = retry_delay(exc, attempt, deadline - time.monotonic())
            if delay is None:
                logger.exception("migration failed", extra={"attempts": outcome.attempts})
                outcome.error = outcome.last_error
                return
            logger.warning(
                "database not reachable yet; trying again",
                extra={"attempt": outcome.attempts, "delay_s": delay, "error": outcome.last_error},
            )
        time.sleep(delay)
        attempt += 1


def create_api_key(org: str, name: str | None) -> dict[str, str]:
    rt = runtime.start(owner_settings(), migrate_schema=False)
    try:
        with rt.db.transaction() as conn:
            organization = orgs.get_or_create_org(conn, org)
            key_id, secret = orgs.create_api_key(conn, organization["id"], name)
    finally:
        rt.close()
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
        return {"applied": upgrade(owner_settings())}
    return {"error": f"unknown action {action!r}; expected create_api_key or migrate"}


def _custom_resource(event: dict[str, Any], context: Any) -> None:
    request_type = event.get("RequestType")
    logger.info("custom resource request", extra={"request_type": request_type})
    if request_type == "Delete":
        answer(event, "SUCCESS", "nothing to do on delete")
        return
    if request_type not in ("Create", "Update"):
        answer(event, "FAILED", f"unknown RequestType {request_type!r}")
        return

    remaining_ms = context.get_remaining_time_in_millis() if context is not None else 900_000
    budget_s = max(1.0, (remaining_ms - _RESPONSE_MARGIN_MS) / 1000)
    outcome = Outcome()
    worker = threading.Thread(target=_apply, args=(outcome, time.monotonic() + budget_s), daemon=True)
    worker.start()
    worker.join(budget_s)
    status, reason, data = verdict(outcome, finished=not worker.is_alive())
    if status == "SUCCESS":
        logger.info("migrations applied", extra={"applied": outcome.applied, "attempts": outcome.attempts})
    answer(event, status, reason, data)


def verdict(outcome: Outcome, *, finished: bool) -> tuple[str, str, dict[str, Any]]:
    """What to tell CloudFormation: status, reason and data, from where the worker got to."""
    if not finished:
        what = "migrations did not finish before the function timeout"
        if outcome.last_error is not None:
            what = f"{outcome.failure(what)}; last error: {outcome.last_error}"
        return "FAILED", what, {}
    if outcome.error is not None or outcome.applied is None:
        return "FAILED", outcome.failure(f"migrations failed: {outcome.error}"), {}
    applied = outcome.applied
    return "SUCCESS", f"applied {len(applied)} migration(s)", {"Applied": ",".join(applied) or "none"}
