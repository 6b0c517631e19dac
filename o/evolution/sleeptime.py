"""Sleep-time compute: between conversations the agent reorganizes its memory, and may evolve.

A pass, as Letta's sleep-time agents do it: read the conversation since the last pass, let the
agent's model rewrite core-memory blocks and record learned facts through memory tools
(``memory_rethink``, ``archival_memory_insert``, ``archival_memory_delete``), and consolidate
archival memory (exact duplicates are removed deterministically, near-duplicates by the model),
all within a token and time budget. Passes are triggered by a schedule (EventBridge Scheduler →
``functions/sleeptime/handler.py``; :func:`start_local_scheduler` inside ``o serve``) and after
every N user messages (:func:`due_agents` counts them). A pass may start an evolution.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from o.agent.prompt import render_blocks
from o.config import SleeptimeSettings
from o.errors import Conflict, NotFound, OError
from o.evolution import evaluator, loop
from o.evolution.shadow import SCRATCH_PREFIX
from o.ids import new_id
from o.llm.config import LLMConfig
from o.llm.types import ChatMessage, ChatRequest, ToolCall, ToolSpec
from o.memory import archival, recall
from o.memory import blocks as memory_blocks
from o.memory.embeddings import EmbedderSource
from o.observability import logger
from o.store import agents as agent_store
from o.store import blocks as block_store
from o.store import evolution as evolution_store
from o.store import passages as passage_store
from o.store import sleeptime as sleeptime_store
from o.store.db import Database

SLEEPTIME_MARKER = "You are the sleep-time memory manager of an AI agent."


TOOLS = [
    ToolSpec(
        "memory_rethink",
        "Replace the whole value of a core memory block with a rewritten, consolidated one.",
        {
            "type": "object",
            "properties": {"label": {"type": "string"}, "new_memory": {"type": "string"}},
            "required": ["label", "new_memory"],
        },
    ),
    ToolSpec(
        "archival_memory_insert",
        "Record a durable fact learned from the conversation in archival memory.",
        {"type": "object", "properties": {"content": {"type": "string"}}, "required": ["content"]},
    ),
    ToolSpec(
        "archival_memory_delete",
        "Delete an archival passage that another passage already covers.",
        {"type": "object", "properties": {"passage_id": {"type": "string"}}, "required": ["passage_id"]},
    ),
    ToolSpec("finish_rethinking_memory", "Call when memory is reorganized.", {"type": "object", "properties": {}}),
]


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
        return dict(self.__dict__)


def _claim(db: Database, organization_id: str, agent_id: str, trigger: str, policy: SleeptimeSettings) -> str:
    pass_id = new_id("sleeptime")
    with db.transaction() as conn:
        # a pass whose worker died long ago no longer blocks the next one
        conn.execute(
            """UPDATE sleeptime_passes SET status = 'failed', error = 'abandoned', completed_at = now()
               WHERE agent_id = %s AND status = 'running' AND started_at < now() - make_interval(secs => %s)""",
            (agent_id, policy.max_seconds * 2),
        )
        try:
            conn.execute(
                """INSERT INTO sleeptime_passes (id, organization_id, agent_id, trigger) VALUES (%s, %s, %s, %s)""",
                (pass_id, organization_id, agent_id, trigger),
            )
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict(f"a sleep-time pass is already running for agent {agent_id}") from exc
    return pass_id


def dedupe_archival(db: Database, agent_id: str) -> int:
    """Delete passages whose normalized text repeats an older passage's; returns how many went."""
    with db.transaction() as conn:
        cur = conn.execute(
            """DELETE FROM passages WHERE id IN (
                 SELECT id FROM (
                   SELECT id, row_number() OVER (
                     PARTITION BY lower(regexp_replace(btrim(text), '\\s+', ' ', 'g')) ORDER BY created_at, id) AS n
                   FROM passages WHERE agent_id = %s AND NOT ('evolution' = ANY(tags))) d
                 WHERE d.n > 1)""",
            (agent_id,),
        )
        return cur.rowcount


def dedupe_near(db: Database, agent_id: str, *, similarity: float, window: int) -> int:
    """Delete the newer of two recent passages whose embeddings are at least ``similarity`` alike (cosine)."""
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT embedding_dim FROM passages WHERE agent_id = %s AND embedding_dim IS NOT NULL LIMIT 1", (agent_id,)
        ).fetchone()
        if row is None:
            return 0
        column = sql.Identifier(passage_store.vector_column(int(row["embedding_dim"])))
        cur = conn.execute(
            sql.SQL("""DELETE FROM passages WHERE id IN (
                 WITH recent AS (
                   SELECT id, created_at, {col} AS v FROM passages
                   WHERE agent_id = %(a)s AND {col} IS NOT NULL AND NOT ('evolution' = ANY(tags))
                   ORDER BY created_at DESC LIMIT %(w)s)
                 SELECT DISTINCT newer.id FROM recent older JOIN recent newer
                   ON (older.created_at, older.id) < (newer.created_at, newer.id)
                  AND 1 - (older.v <=> newer.v) >= %(s)s)""").format(col=column),
            {"a": agent_id, "w": window, "s": similarity},
        )
        return cur.rowcount


def run_pass(
    deps: loop.EvolutionDeps,
    organization_id: str,
    agent_id: str,
    *,
    trigger: str = "manual",
    policy: SleeptimeSettings | None = None,
) -> PassResult:
    policy = policy or SleeptimeSettings()
    db = deps.db
    with db.transaction() as conn:
        if agent_store.get(conn, organization_id, agent_id) is None:
            raise NotFound(f"agent {agent_id} not found")
    pass_id = _claim(db, organization_id, agent_id, trigger, policy)
    result = PassResult(pass_id, agent_id, trigger, "running")
    started = time.monotonic()
    try:
        result.duplicates_removed = dedupe_archival(db, agent_id) + dedupe_near(
            db, agent_id, similarity=policy.near_duplicate_similarity, window=policy.archival_window
        )
        _reorganize(deps, organization_id, agent_id, policy, result, started)
        result.status = "completed"
    except Exception as exc:
        logger.exception("sleep-time pass failed", extra={"agent_id": agent_id})
        result.status = "failed"
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = round(time.monotonic() - started, 3)
    figures = {k: v for k, v in result.as_dict().items() if k not in ("id", "agent_id", "trigger", "status", "error")}
    with db.transaction() as conn:
        conn.execute(
            """UPDATE sleeptime_passes SET status = %s, error = %s, figures = %s::jsonb, completed_at = now(),
                      through_seq = CASE WHEN %s = 'completed' THEN %s ELSE through_seq END
               WHERE id = %s""",
            (result.status, result.error, json.dumps(figures, default=str), result.status, result.through_seq, pass_id),
        )
    if result.status == "completed":
        result.evolution_id = _maybe_evolve(deps, organization_id, agent_id, policy)
    return result


def _reorganize(
    deps: loop.EvolutionDeps,
    organization_id: str,
    agent_id: str,
    policy: SleeptimeSettings,
    result: PassResult,
    started: float,
) -> None:
    db = deps.db
    with db.transaction() as conn:
        agent = agent_store.get(conn, organization_id, agent_id)
        assert agent is not None
        since = sleeptime_store.through_seq(conn, agent_id)
        messages = conn.execute(
            """SELECT seq, role, text, name FROM messages WHERE agent_id = %s AND seq > %s AND text <> ''
               AND role IN ('user', 'assistant', 'tool') ORDER BY seq LIMIT %s""",
            (agent_id, since, policy.message_window),
        ).fetchall()
        blocks = block_store.for_agents(conn, [agent_id])[agent_id]
        passages = conn.execute(
            "SELECT id, text FROM passages WHERE agent_id = %s ORDER BY created_at DESC LIMIT %s",
            (agent_id, policy.archival_window),
        ).fetchall()
    if not messages:
        result.through_seq = since
        return
    result.through_seq = int(messages[-1]["seq"])
    client = deps.engine.llm(LLMConfig.model_validate(agent["llm_config"]))
    transcript = "\n".join(f"{m['role']}: {m['text']}" for m in messages)
    chat = [
        ChatMessage.system(
            f"{SLEEPTIME_MARKER}\nRewrite core memory blocks so they hold what matters from the conversation, "
            "merge overlapping archival passages, and record durable facts. Stay within each block's limit. "
            "Call finish_rethinking_memory when done.\n\n"
            + render_blocks(blocks)
            + "\n\n<archival_sample>\n"
            + "\n".join(f"[{p['id']}] {p['text'][:300]}" for p in passages)
            + "\n</archival_sample>"
        ),
        ChatMessage.user(f"Conversation since the last pass:\n{transcript}"),
    ]
    while result.tool_calls < policy.max_tool_calls:
        if time.monotonic() - started > policy.max_seconds:
            raise TimeoutError(f"sleep-time pass exceeded its {policy.max_seconds} s budget")
        if result.tokens >= policy.max_tokens:
            raise OError(f"sleep-time pass exceeded its {policy.max_tokens} token budget")
        response = client.chat(ChatRequest(messages=chat, tools=TOOLS, tool_choice="required", temperature=0.0))
        result.tokens += response.usage.total_tokens
        if not response.tool_calls:
            return
        chat.append(response.as_message())
        finished = False
        for tool_call in response.tool_calls:
            result.tool_calls += 1
            text, failed = _run_tool(db, organization_id, agent_id, tool_call, result, deps.engine.embedders)
            chat.append(ChatMessage.tool(tool_call.id, text, name=tool_call.name, is_error=failed))
            finished = finished or tool_call.name == "finish_rethinking_memory"
        if finished:
            return


def _run_tool(
    db: Database,
    organization_id: str,
    agent_id: str,
    call: ToolCall,
    result: PassResult,
    embedders: EmbedderSource,
) -> tuple[str, bool]:
    try:
        args = call.parsed_arguments()
        if call.name == "memory_rethink":
            label, new = str(args["label"]), str(args["new_memory"])
            with db.transaction() as conn:
                memory_blocks.edit_value(conn, organization_id, agent_id, label, lambda _old: new)
            if label not in result.blocks_rewritten:
                result.blocks_rewritten.append(label)
            return f"block {label!r} rewritten ({len(new)} characters)", False
        if call.name == "archival_memory_insert":
            with db.transaction() as conn:
                archival.insert(
                    conn, organization_id, agent_id, str(args["content"]), tags=["sleeptime"], embedders=embedders
                )
            result.facts_recorded += 1
            return "recorded", False
        if call.name == "archival_memory_delete":
            with db.transaction() as conn:
                archival.delete(conn, organization_id, agent_id, str(args["passage_id"]))
            result.duplicates_removed += 1
            return "deleted", False
        if call.name == "finish_rethinking_memory":
            return "done", False
        return f"unknown tool {call.name!r}", True
    except (OError, KeyError, ValueError) as exc:
        return f"error: {getattr(exc, 'message', None) or exc}", True


def _maybe_evolve(
    deps: loop.EvolutionDeps, organization_id: str, agent_id: str, policy: SleeptimeSettings
) -> str | None:
    if not policy.evolve_every_n_passes:
        return None
    with deps.db.transaction() as conn:
        done = conn.execute(
            "SELECT count(*) AS n FROM sleeptime_passes WHERE agent_id = %s AND status = 'completed'", (agent_id,)
        ).fetchone()
        suite = evaluator.load_suite(conn, agent_id)
        active = evolution_store.active_for_agent(conn, agent_id)
    if done is None or int(done["n"]) % policy.evolve_every_n_passes != 0 or not suite.cases or active:
        return None
    try:
        evo = loop.start(deps, organization_id, agent_id, trigger="sleeptime")
    except Conflict:
        return None
    loop.launch(deps, evo.id)
    return evo.id


def due_agents(db: Database, policy: SleeptimeSettings, *, now: datetime | None = None) -> list[tuple[str, str, str]]:
    """(organization id, agent id, trigger) of agents due for a pass: N new user messages, or the interval
    elapsed with anything new. Scratch copies made by shadow tests are never due."""
    now = now or datetime.now(UTC)
    with db.transaction() as conn:
        rows = conn.execute(
            """SELECT a.id, a.organization_id, p.last_at,
                      (SELECT count(*) FROM messages m
                        WHERE m.agent_id = a.id AND m.role = 'user' AND m.seq > coalesce(p.through, 0)) AS new_user
               FROM agents a
               JOIN organizations o ON o.id = a.organization_id AND o.name NOT LIKE %s
               LEFT JOIN LATERAL (
                   SELECT max(through_seq) AS through, max(started_at) AS last_at
                   FROM sleeptime_passes s WHERE s.agent_id = a.id AND s.status = 'completed') p ON true
               WHERE EXISTS (SELECT 1 FROM messages m WHERE m.agent_id = a.id AND m.seq > coalesce(p.through, 0))
                 AND NOT EXISTS (SELECT 1 FROM sleeptime_passes r WHERE r.agent_id = a.id AND r.status = 'running')""",
            (SCRATCH_PREFIX + "%",),
        ).fetchall()
    due = []
    for r in rows:
        if r["new_user"] >= policy.every_n_messages:
            due.append((r["organization_id"], r["id"], "messages"))
        elif r["last_at"] is None or now - r["last_at"] >= timedelta(seconds=policy.interval_seconds):
            due.append((r["organization_id"], r["id"], "schedule"))
    return due


def sweep(
    deps: loop.EvolutionDeps,
    policy: SleeptimeSettings | None = None,
    *,
    deadline_s: float = 600.0,
    only_messages: bool = False,
) -> list[PassResult]:
    """One pass for every due agent, until ``deadline_s`` runs out (the rest wait for the next sweep)."""
    policy = policy or SleeptimeSettings()
    started = time.monotonic()
    results = []
    for org_id, agent_id, trigger in due_agents(deps.db, policy):
        if only_messages and trigger != "messages":
            continue
        if time.monotonic() - started > deadline_s:
            break
        try:
            results.append(run_pass(deps, org_id, agent_id, trigger=trigger, policy=policy))
        except Conflict:
            continue
    return results


@dataclass
class LocalScheduler:
    thread: threading.Thread
    stopped: threading.Event

    def stop(self, timeout: float = 10.0) -> None:
        self.stopped.set()
        self.thread.join(timeout)


def start_local_scheduler(deps: loop.EvolutionDeps, policy: SleeptimeSettings) -> LocalScheduler:
    """Sleep-time compute inside ``o serve``: every ``policy.poll_seconds`` a sweep over the due agents.

    It first resumes the evolutions a previous ``o serve`` left undecided (:func:`loop.resume_incomplete`).
    Call ``.stop()`` on shutdown.
    """
    if deps.executions is None:
        resumed = loop.resume_incomplete(deps)
        if resumed:
            logger.info("resumed undecided evolutions", extra={"evolutions": resumed})
    stopped = threading.Event()
    poll_seconds = policy.poll_seconds

    def work() -> None:
        while not stopped.wait(poll_seconds):
            try:
                sweep(deps, policy, deadline_s=max(poll_seconds, 60.0))
            except Exception:
                logger.exception("sleep-time sweep failed")

    thread = threading.Thread(target=work, name="o-sleeptime", daemon=True)
    thread.start()
    return LocalScheduler(thread, stopped)


_after_lock = threading.Lock()
_after_running: set[str] = set()


def after_user_messages(
    deps: loop.EvolutionDeps,
    organization_id: str,
    agent_id: str,
    *,
    policy: SleeptimeSettings | None = None,
    background: bool = True,
) -> bool:
    """The "every N user messages" trigger, for the agent loop to call when a run ends.

    Counts the agent's user messages since the last completed pass (one indexed query) and, when
    ``every_n_messages`` is reached, runs a pass — on a background thread unless ``background`` is
    False. Returns whether a pass was started.
    """
    policy = policy or SleeptimeSettings()
    with deps.db.transaction() as conn:
        since = sleeptime_store.through_seq(conn, agent_id)
        row = conn.execute(
            """SELECT count(*) AS n FROM messages WHERE agent_id = %s AND role = 'user' AND seq > %s
               AND NOT EXISTS (SELECT 1 FROM sleeptime_passes WHERE agent_id = %s AND status = 'running')""",
            (agent_id, since, agent_id),
        ).fetchone()
    if row is None or int(row["n"]) < policy.every_n_messages:
        return False
    with _after_lock:
        if agent_id in _after_running:
            return False
        _after_running.add(agent_id)

    def work() -> None:
        try:
            run_pass(deps, organization_id, agent_id, trigger="messages", policy=policy)
        except Conflict:
            pass
        finally:
            with _after_lock:
                _after_running.discard(agent_id)

    if background:
        threading.Thread(target=work, name=f"sleeptime-{agent_id}", daemon=True).start()
    else:
        work()
    return True


class RunEndTrigger:
    """:func:`after_user_messages` for every run the local agent loop finishes, kept off the request path.

    Set as the engine's ``on_run_end``: the loop only puts the run id on a queue. One worker thread
    looks up the run's agent, skips shadow-test scratch copies, and counts; a due pass then runs on
    its own thread (``after_user_messages``), so a long pass never delays the next count either.
    """

    def __init__(self, deps_for: Callable[[], loop.EvolutionDeps], policy: SleeptimeSettings | None = None) -> None:
        self.deps_for = deps_for
        self.policy = policy or SleeptimeSettings()
        self._queue: queue.Queue[str] = queue.Queue()
        self._deps: loop.EvolutionDeps | None = None
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def __call__(self, run_id: str) -> None:
        self._queue.put(run_id)
        if self._worker is None:
            with self._lock:
                if self._worker is None:
                    self._worker = threading.Thread(target=self._work, name="o-sleeptime-trigger", daemon=True)
                    self._worker.start()

    def _work(self) -> None:
        while True:
            run_id = self._queue.get()
            try:
                self.check(run_id)
            except Exception:
                logger.exception("sleep-time trigger failed", extra={"run_id": run_id})
            finally:
                self._queue.task_done()

    def check(self, run_id: str) -> bool:
        """Start a pass for the run's agent if it is due; whether one was started."""
        if self._deps is None:
            self._deps = self.deps_for()
        with self._deps.db.transaction() as conn:
            row = conn.execute(
                """SELECT r.organization_id, r.agent_id FROM runs r JOIN organizations o ON o.id = r.organization_id
                   WHERE r.id = %s AND o.name NOT LIKE %s""",
                (run_id, SCRATCH_PREFIX + "%"),
            ).fetchone()
        if row is None:  # a shadow replay's run, or one deleted with its agent
            return False
        # Embed the run's messages for conversation_search now, off the request path, rather than
        # inline in the first search after a long history.
        with self._deps.db.transaction() as conn:
            recall.index_pending(conn, row["organization_id"], row["agent_id"], embedders=self._deps.engine.embedders)
        return after_user_messages(self._deps, row["organization_id"], row["agent_id"], policy=self.policy)

    def drain(self) -> None:
        """Wait until every queued run was looked at (the passes it started may still be running)."""
        self._queue.join()
