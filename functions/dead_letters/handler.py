"""Dead-letter Lambda: ends the work of an ingest queue message SQS gave up on (infra/files.py).

A record names a file (``{"file_id"}``) or a transfer job (``{"upload_id"}``) that ``MAX_RECEIVES``
deliveries to the ingest function did not finish. If it is still unfinished and no run is at it, it
ends in ``error`` with a reason the user can act on (:func:`o.agent.transfer_jobs.give_up`,
:func:`o.memory.files.ingest.give_up`); finished meanwhile, or gone, the record is dropped. One a run
may still be at (its lease not run out) is reported as a batch item failure: the dead-letter queue
delivers it again after its visibility timeout, by when that run has finished or its lease has.

A function of its own, not the ingest function: a message may be dead-lettered because the ingest
function itself cannot run (its start-up fails, it runs out of memory), and this one needs only the
database and the right to delete an import's uploaded bytes.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from o import runtime
from o.agent import transfer_jobs
from o.aws.blobs import announced
from o.memory.files import ingest
from o.observability import logger, tracer
from o.runtime.files import transfer_jobs as jobs_of

_runtime = runtime.lambda_runtime()
_jobs = jobs_of(_runtime.settings, _runtime.db)
_DELIVERIES = _runtime.settings.files.max_receives
# nothing written on the work for this long: no run is at it, nor about to take it (a job just handed
# on, a file just replaced: the message that announced them anew is on its way). An ingest run killed
# at its timeout may have written up to a minute before its message was dead-lettered (the visibility
# timeout is a minute longer than the function's): such work is ended on the record's next delivery.
QUIET_S = 120.0


def _end(key: str, named: str) -> bool:
    """End the work the record names; whether the record is done with (else delivered again)."""
    if key == "upload_id":
        return transfer_jobs.give_up(_jobs, named, _DELIVERIES, QUIET_S)
    return ingest.give_up(_runtime.db, named, _DELIVERIES, QUIET_S)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    del context
    failures = []
    for record in (event or {}).get("Records", []):
        named = announced(record.get("body"))
        if named is None:  # a poison record: nothing it names to end
            logger.warning("dead letter without a file_id or upload_id dropped", extra={"body": record.get("body")})
        elif not _end(*named):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
