"""Talking to an agent: POST /v1/agents/{agent_id}/messages (+ /stream, /async, /cancel) and /recompile.

Locally the loop runs in this process; with a state machine configured the API starts an
execution and (for a synchronous request) follows the run's durable state until it ends
or pauses.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, StreamingResponse

from o.agent import lifecycle, runner
from o.agent import runs as run_api
from o.agent.engine import Engine
from o.agent.events import StepEvent
from o.agent.prompt import compile_prompt
from o.agent.runner import StillRunning, continue_run, drive, fail_eventually, failure_text, wait_until_settled
from o.agent.step import Outcome, StepDeps
from o.api import errors
from o.api.deps import AgentEngine, Db, Org
from o.api.schemas.messages import to_letta
from o.api.schemas.runs import LettaResponse, letta_response, run_object, stop_reason_of, usage_of
from o.api.schemas.send import CancelRequest, SendMessages
from o.api.stream import LettaStream
from o.errors import OError
from o.observability import logger
from o.store import agents as agent_store
from o.store import runs as run_store
from o.store.db import Database
from o.store.records import NextAction, Run, StopReason

router = APIRouter(prefix="/v1/agents/{agent_id}", tags=["agents"], responses=errors.responses(401, 404))
# 409: an approval with nothing pending, or one for another call; 502: the run failed at its provider
SEND = errors.responses(400, 409, 502)
# On AWS a run still working when the request's wait (O_AGENT_SYNC_WAIT_S) is over: 202 with what it
# produced so far and the run to follow. The body is a LettaResponse (Letta clients parse it), whose
# stop_reason cannot say "still running" (Letta's StopReasonType has no such value): it says
# "max_steps", i.e. this request's budget ended before the agent's turn did.
STILL_RUNNING: dict[int | str, dict[str, Any]] = {
    202: {
        "model": LettaResponse,
        "description": "the run goes on after the request's wait: the messages so far, stop_reason "
        "max_steps, usage.run_ids and run_id name the run to follow at GET /v1/runs/{run_id}",
        "headers": {"X-Run-Id": {"description": "the run still working", "schema": {"type": "string"}}},
    }
}
# a stream reports a failure of the run inside the stream
START = errors.responses(400, 409)
STREAM = {**errors.EVENT_STREAM, **START}

# One run at a time per conversation: a send while another run of the agent is active queues behind it,
# unless the caller sends `X-O-If-Busy: reject`, which answers 409 (code "conversation_busy") instead.
IfBusy = Annotated[
    Literal["queue", "reject"],
    Header(
        alias="X-O-If-Busy",
        description="while another run of the agent is active: queue behind it (default) or reject with 409",
    ),
]


def _begin(
    db: Database,
    org: str,
    agent_id: str,
    body: SendMessages,
    engine: Engine,
    *,
    background: bool = False,
    if_busy: str = "queue",
) -> run_api.Started:
    inputs, decisions = body.parsed()
    with db.transaction() as conn:
        if decisions:
            return run_api.approve(conn, org, agent_id, decisions)
        request = body.run_request(engine)
        return run_api.start(conn, org, agent_id, inputs, request, background=background, wait=if_busy != "reject")


# with ``streaming: true`` the answer is the stream of /messages/stream
@router.post("/messages", response_model=LettaResponse, responses={**errors.EVENT_STREAM, **SEND, **STILL_RUNNING})
def send_messages(
    agent_id: str, body: SendMessages, org: Org, db: Db, engine: AgentEngine, if_busy: IfBusy = "queue"
) -> Any:
    if body.streaming:
        return stream_messages(agent_id, body, org, db, engine, if_busy)
    return answer(db, engine, _begin(db, org, agent_id, body, engine, if_busy=if_busy))


def answer(db: Database, engine: Engine, started: run_api.Started) -> Any:
    """The LettaResponse of a started run, once it settles (202 when it outlasts the wait on AWS)."""
    continue_run(engine.launcher, db, started.run, wait=True)
    if not engine.launcher.inline:
        try:
            wait_until_settled(db, started.run.id, engine.settings.sync_wait_s)
        except StillRunning:
            return _still_running(db, started)
    with db.transaction() as conn:
        run, rows = run_api.produced(conn, started.run.id, started)
    return jsonable_encoder(letta_response(run, rows))


def _still_running(db: Database, started: run_api.Started) -> JSONResponse:
    """202: the run outlasted the request's wait (it goes on in the state machine). A 504 would make
    Letta's SDK send the message again (it retries 5xx), so the answer is a success that says where
    the rest will be."""
    with db.transaction() as conn:
        run, rows = run_api.produced(conn, started.run.id, started)
    body = jsonable_encoder(letta_response(run, rows))
    body["stop_reason"] = {"message_type": "stop_reason", "stop_reason": StopReason.MAX_STEPS.value}
    body["run_id"] = run.id
    body["status"] = run.status.value
    return JSONResponse(body, status_code=202, headers={"X-Run-Id": run.id, "Retry-After": "2"})


@router.post("/messages/async", responses=START)
def send_messages_async(
    agent_id: str, body: SendMessages, org: Org, db: Db, engine: AgentEngine, if_busy: IfBusy = "queue"
) -> Any:
    started = _begin(db, org, agent_id, body, engine, background=True, if_busy=if_busy)
    continue_run(engine.launcher, db, started.run, wait=False)
    with db.transaction() as conn:
        run = run_store.get(conn, started.run.id)
    assert run is not None
    return jsonable_encoder(run_object(run))


def _sse(item: Any) -> str:
    return f"data: {json.dumps(jsonable_encoder(item))}\n\n"


@router.post("/messages/stream", responses=STREAM)
def stream_messages(
    agent_id: str, body: SendMessages, org: Org, db: Db, engine: AgentEngine, if_busy: IfBusy = "queue"
) -> StreamingResponse:
    return stream_of(db, engine, _begin(db, org, agent_id, body, engine, if_busy=if_busy), body)


def stream_of(db: Database, engine: Engine, started: run_api.Started, body: SendMessages) -> StreamingResponse:
    """The SSE stream of a started run: driven here (live tokens) or followed from Postgres."""
    run_id = started.run.id
    if engine.launcher.inline or _drives_here(engine, started.run):
        events = _stream_inline(engine, started, body)
    else:
        continue_run(engine.launcher, db, started.run, wait=False)
        events = _stream_polled(engine, started)
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Run-Id": run_id}
    )


_END = object()


def _drives_here(engine: Engine, run: Run) -> bool:
    """Where a state machine runs the loop (AWS): whether this process drives a streamed run itself, so
    its tokens stream live (O_AGENT_STREAM_INLINE_S). Not a run an execution already drives (an approval
    for a run paused in the state machine): the execution goes on with it."""
    return engine.settings.stream_inline_s > 0 and run.execution_arn is None and run.task_token is None


def _drive_streamed(engine: Engine, deps: StepDeps, run_id: str) -> None:
    """Drive a streamed run in this process. Where a state machine runs the others, only for
    O_AGENT_STREAM_INLINE_S seconds (a Lambda's time is bounded; each action finishes before the clock is
    read), and what remains (the rest of a long run, an approval to wait for) goes on in the state machine:
    every action resumes from the run's durable state, so it continues exactly where this stopped."""
    if engine.launcher.inline:
        drive(deps, run_id)
        return
    deadline = time.monotonic() + engine.settings.stream_inline_s
    outcome: Outcome = drive(deps, run_id, max_actions=1)
    while outcome.next.due and time.monotonic() < deadline:
        outcome = drive(deps, run_id, max_actions=1)
    if not outcome.next.ended:
        engine.launcher.launch(run_id, wait=False)


def _stream_inline(engine: Engine, started: run_api.Started, body: SendMessages) -> Iterator[str]:
    items: queue.Queue[Any] = queue.Queue()
    run_id = started.run.id
    # the run's own request decides the shapes (an approval's body may not repeat the options)
    letta = LettaStream(started.run.request, stream_tokens=body.stream_tokens)

    def emit(event: StepEvent) -> None:
        for chunk in letta.chunks(event):
            items.put(chunk)

    deps = engine.deps(emit=emit, stream_tokens=body.stream_tokens)

    def work() -> None:
        try:
            _drive_streamed(engine, deps, run_id)
        except Exception as exc:
            logger.exception("streamed run failed", extra={"run_id": run_id})
            message = exc.message if isinstance(exc, OError) else "internal error while running the agent"
            items.put(
                {"message_type": "error_message", "error_type": "internal_error", "message": message, "run_id": run_id}
            )
            fail_eventually(engine.db, run_id, failure_text(exc))
        finally:
            items.put(_END)

    threading.Thread(target=work, name=f"stream-{run_id}", daemon=True).start()
    while True:
        item = items.get()
        if item is _END:
            break
        yield _sse(item)
    yield from _stream_tail(engine.db, run_id)


def _stream_polled(engine: Engine, started: run_api.Started) -> Iterator[str]:
    yield from follow_run(engine.db, started.run.id, started.after_seq, set(started.input_ids))


def follow_run(
    db: Database,
    run_id: str,
    after_seq: int = 0,
    skip: set[str] | None = None,
    poll_s: float = 0.1,
    max_s: float = 15 * 60,
) -> Iterator[str]:
    """SSE of a run's messages as its (local or remote) worker stores them, read from Postgres.

    Each item carries ``seq_id``, so a client that lost the stream resumes with ``starting_after``.
    """
    after = after_seq
    deadline = time.monotonic() + max_s
    while time.monotonic() < deadline:
        with db.transaction() as conn:
            run = run_store.get(conn, run_id)
            rows = run_store.messages(conn, run_id, after_seq=after)
        assert run is not None
        for row in rows:
            after = max(after, row["seq"])
            if skip and row["id"] in skip:
                continue
            for item in to_letta(row, use_assistant_message=run.request.get("use_assistant_message", True)):
                yield _sse(item)
        if not run.next_action.due:
            break
        time.sleep(poll_s)
    yield from _stream_tail(db, run_id)


def _stream_tail(db: Database, run_id: str) -> Iterator[str]:
    with db.transaction() as conn:
        run = run_store.get(conn, run_id)
    assert run is not None
    if run.next_action == NextAction.FAILED:
        yield _sse(
            {
                "message_type": "error_message",
                "error_type": (run.stop_reason or StopReason.ERROR).value,
                "message": run.error or "the run failed",
                "run_id": run_id,
            }
        )
    if run.next_action.due:
        # the stream's time ran out before the run's turn did (it goes on: POST /v1/runs/{id}/stream follows it);
        # Letta has no "still running" stop reason, and the 202 of a sync send says the same this way
        yield _sse({"message_type": "stop_reason", "stop_reason": StopReason.MAX_STEPS.value})
    else:
        yield _sse(stop_reason_of(run))
    yield _sse(usage_of(run))
    yield "data: [DONE]\n\n"


@router.post("/messages/cancel", responses=errors.responses(400))
def cancel_messages(agent_id: str, org: Org, db: Db, engine: AgentEngine, body: CancelRequest | None = None) -> Any:
    touched = runner.cancel(engine.launcher, db, org, agent_id, body.run_ids if body else None)
    return {run.id: "cancelled" for run in touched}


@router.post("/recompile")
def recompile(agent_id: str, org: Org, db: Db, dry_run: bool = False, update_timestamp: bool = False) -> str:
    """The agent's system prompt compiled from its current memory. Unless ``dry_run``, the agent's
    version is bumped so its next step uses this prompt rather than a cached one (whose memory
    counts may be older)."""
    del update_timestamp  # the compiled prompt always shows the blocks' own last edit time
    with db.transaction() as conn:
        agent = lifecycle.require(conn, org, agent_id, for_update=not dry_run)
        if not dry_run:
            agent_store.touch(conn, agent_id)
            agent = lifecycle.require(conn, org, agent_id)
        return compile_prompt(conn, agent).text
