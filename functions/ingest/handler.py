"""Ingest Lambda: parses, chunks and embeds uploaded files, fed by the ingest queue (infra/files.py).

Each SQS record names one file (``{"file_id"}``). The work is ``o.memory.files.ingest.process_next``,
the same function `o serve`'s worker runs. A record whose file is still unfinished afterwards (a
transient failure, or a file another invocation holds the lease on) is reported as a batch item
failure: SQS delivers it again after the visibility timeout, which is how a file survives a Lambda
timeout (its lease runs out, and the next delivery resumes from the chunks already stored).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from o import runtime
from o.memory.files import ingest
from o.observability import logger, tracer

_runtime = runtime.lambda_runtime()
_ingestion = runtime.ingestion(
    _runtime.settings, _runtime.db, runtime.agent_engine(_runtime.settings, _runtime.db).embedders
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    del context
    failures = []
    for record in (event or {}).get("Records", []):
        try:
            file_id = str(json.loads(record["body"])["file_id"])
        except (KeyError, TypeError, ValueError):
            logger.warning("ingest record without a file_id dropped", extra={"body": record.get("body")})
            continue
        ingest.process_next(_ingestion, file_id)
        if ingest.unfinished(_ingestion, file_id):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
