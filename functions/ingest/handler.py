"""Ingest Lambda: parses, chunks and embeds uploaded files, fed by the ingest queue (infra/files.py).

Each SQS record names one file (``{"file_id"}``) or one transfer job (``{"upload_id"}``: a bundle
import from an upload session, or an export; :mod:`o.agent.transfer_jobs`). A file's work is
``o.memory.files.ingest.process_next``, the same function `o serve`'s worker runs. A record whose
file (or job) is still unfinished afterwards (a transient failure, or one another invocation holds
the lease on) is reported as a batch item failure: SQS delivers it again after the visibility
timeout, which is how work survives a Lambda timeout (its lease runs out; a file's next delivery
resumes from the chunks already stored, a bundle import from the last chunk it committed).

A bundle import longer than one invocation stops between chunks when less than ``_MARGIN_S`` of the
invocation is left and hands itself on: queued again, with a new message on this queue, and this
record is done.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from o import runtime
from o.agent import transfer_jobs
from o.aws.blobs import announced
from o.memory.files import ingest
from o.observability import logger, tracer
from o.runtime.files import ingestion
from o.runtime.files import transfer_jobs as jobs_of

_runtime = runtime.lambda_runtime()
_ingestion = ingestion(_runtime.settings, _runtime.db, runtime.agent_engine(_runtime.settings, _runtime.db).embedders)
_jobs = jobs_of(_runtime.settings, _runtime.db)
# the invocation time a bundle import leaves unused: one chunk (a frame of 1000 passages, ~30 s of
# HNSW inserts, then its commit) must fit in it with room to spare
_MARGIN_S = 120.0


def _work(key: str, named: str, context: LambdaContext) -> bool:
    """Do what one record names; whether it is finished (else SQS delivers it again)."""
    if key == "upload_id":  # an upload session's bundle import, or an export
        ran = transfer_jobs.run(_jobs, named, lambda: context.get_remaining_time_in_millis() / 1000 - _MARGIN_S)
        if ran is not None and ran.handed_on:
            return True  # a new message carries it on
        return not transfer_jobs.unfinished(_jobs, named)
    ingest.process_next(_ingestion, named)
    return not ingest.unfinished(_ingestion, named)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    failures = []
    for record in (event or {}).get("Records", []):
        named = announced(record.get("body"))
        if named is None:
            logger.warning("ingest record without a file_id or upload_id dropped", extra={"body": record.get("body")})
            continue
        if not _work(*named, context):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
