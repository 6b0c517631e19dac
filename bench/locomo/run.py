"""LoCoMo retrieval through O's own archival engine, on a real (embedded) Postgres.

The measure is the one in ``../shared/data/locomo/README.md``: each conversation is one agent;
every turn is one archival passage ``"<speaker>: <text>"`` (plus ``" [image: <caption>]"``) with its
``dia_id`` in the passage metadata; every category 1-4 question with a resolvable evidence id is
searched with its text. Turns are inserted one session per call, so with the default
``--context-window 2`` each turn is indexed with its session neighbours (``0`` turns that off).

    python bench/locomo/run.py                      # hybrid engine, context window 2
    python bench/locomo/run.py --context-window 0   # each turn indexed alone
    python bench/locomo/run.py --ablation           # plus BM25 alone and vectors alone
    python bench/locomo/run.py --memory recall      # the turns as message history, conversation_search

The data file is evaluation material (CC BY-NC 4.0): it is read where it lies, never copied.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from o.cli.progress import steps  # noqa: E402
from o.ids import new_id  # noqa: E402
from o.memory import archival  # noqa: E402
from o.memory import recall as recall_memory  # noqa: E402
from o.memory.embeddings import EmbeddingConfig, local_embedder  # noqa: E402
from o.store import search  # noqa: E402
from o.store.db import Database  # noqa: E402
from o.store.embedded import EmbeddedPostgres  # noqa: E402
from o.store.migrate import migrate  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "locomo" / "locomo10.json"
KS = (1, 5, 10, 20, 50)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}


def parse_session_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)
    except ValueError:
        return None


def load(path: Path) -> list[dict]:
    conversations = []
    for sample in json.loads(path.read_text()):
        conv = sample["conversation"]
        names = sorted(
            (k for k in conv if re.fullmatch(r"session_\d+", k) and isinstance(conv[k], list)),
            key=lambda k: int(k.split("_")[1]),
        )
        sessions = []
        turn_ids: set[str] = set()
        for name in names:
            turns = []
            for turn in conv[name]:
                text = f"{turn['speaker']}: {turn['text']}"
                if turn.get("blip_caption"):
                    text += f" [image: {turn['blip_caption']}]"
                turns.append((turn["dia_id"], text))
                turn_ids.add(turn["dia_id"])
            sessions.append((parse_session_time(conv.get(f"{name}_date_time")), turns))
        questions = []
        for qa in sample["qa"]:
            if qa["category"] not in CATEGORIES:
                continue
            # A few evidence entries hold several ids ("D8:6; D9:17"); malformed ones match nothing.
            evidence = [x for e in qa["evidence"] for x in re.split(r"[;,\s]+", e) if x in turn_ids]
            if evidence:
                questions.append((qa["question"], list(dict.fromkeys(evidence)), qa["category"]))
        conversations.append({"id": sample["sample_id"], "sessions": sessions, "questions": questions})
    return conversations


def session_of(dia_id: str) -> int:
    return int(dia_id[1:].split(":")[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--database-url", default=None, help="use this Postgres instead of an embedded one")
    parser.add_argument("--context-window", type=int, default=archival.CONTEXT_WINDOW)
    parser.add_argument("--limit", type=int, default=0, help="only the first N conversations")
    parser.add_argument(
        "--memory",
        choices=("archival", "recall"),
        default="archival",
        help="index the turns as archival passages, or as an agent's message history",
    )
    parser.add_argument(
        "--force-hnsw", action="store_true", help="search vectors through the HNSW index even for these small agents"
    )
    parser.add_argument("--ablation", action="store_true", help="also rank with BM25 alone and with vectors alone")
    args = parser.parse_args()

    if not args.data.is_file():
        sys.exit(f"LoCoMo data not found at {args.data} (see ../shared/data/locomo/README.md)")
    conversations = load(args.data)
    if args.limit:
        conversations = conversations[: args.limit]

    server = None
    url = args.database_url
    if url is None:
        server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-locomo-")), cleanup_mode="delete")
        url = server.url
    migrate(url)
    db = Database(url, min_size=1, max_size=2).open()
    embedder = local_embedder()
    embedder.embed(["warm up"])
    try:
        with db.transaction() as conn:
            org = conn.execute(
                "INSERT INTO organizations (id, name) VALUES (%s, %s) RETURNING id",
                (new_id("org"), f"locomo-bench-{new_id('run')}"),
            ).fetchone()["id"]
        agents: list[str] = []
        message_turns: dict[str, str] = {}
        ingest_started = time.perf_counter()
        n_turns = 0
        with steps("ingesting conversations") as told:  # a bar on a terminal, nothing in a pipe
            for done, conv in enumerate(conversations):
                told(done, len(conversations), str(conv["id"]))
                agent_id = new_id("agent")
                with db.transaction() as conn:
                    conn.execute(
                        "INSERT INTO agents (id, organization_id, name, embedding_config) VALUES (%s, %s, %s, %s)",
                        (agent_id, org, f"locomo-{conv['id']}", json.dumps(EmbeddingConfig.default().model_dump())),
                    )
                agents.append(agent_id)
                if args.memory == "recall":
                    n_turns += ingest_messages(db, org, agent_id, conv, message_turns)
                    continue
                for when, turns in conv["sessions"]:
                    items = [
                        archival.PassageInput(text, metadata={"dia_id": dia}, created_at=when) for dia, text in turns
                    ]
                    with db.transaction() as conn:
                        if args.force_hnsw:  # these small agents' rows join the graph too (schema 025)
                            conn.execute("SELECT set_config('o.graph_min_rows', '0', true)")
                        archival.insert(conn, org, agent_id, items, context_window=args.context_window, chunk=False)
                    n_turns += len(items)
        ingest_seconds = time.perf_counter() - ingest_started

        questions = [
            (agent_id, q) for conv, agent_id in zip(conversations, agents, strict=True) for q in conv["questions"]
        ]
        settings = [("hybrid", None)]
        if args.ablation:
            settings += [("BM25 only", (1.0, 0.0)), ("vector only", (0.0, 1.0))]
        if args.memory == "recall":
            settings = [("recall (conversation_search)", None)]
        results = [
            (
                name,
                evaluate(
                    db,
                    org,
                    questions,
                    weights,
                    message_turns if args.memory == "recall" else None,
                    0 if args.force_hnsw else search.EXACT_MAX_ROWS,
                ),
            )
            for name, weights in settings
        ]
    finally:
        db.close()
        if server is not None:
            server.stop()

    what = (
        "archival engine"
        if args.memory == "archival"
        else "recall engine (turns stored as messages, indexed with the 2 previous turns)"
    )
    print(
        f"LoCoMo retrieval through O's {what} (BM25 + all-MiniLM-L6-v2 in Postgres), "
        f"context window {args.context_window if args.memory == 'archival' else 'previous 2'}"
        + (", vectors through HNSW" if args.force_hnsw else "")
    )
    print(
        f"conversations {len(conversations)}, turns {n_turns}, questions {len(questions)}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end"
    )
    print(f"ingest: {ingest_seconds:.1f} s ({n_turns / ingest_seconds:.0f} passages/s, embedding included)")
    for name, result in results:
        report(name, result)


def ingest_messages(db: Database, org: str, agent_id: str, conv: dict, turns_of: dict[str, str]) -> int:
    """Store a conversation as the agent's message history (speaker A as user) and index it."""
    speakers: list[str] = []
    count = 0
    with db.transaction() as conn:
        for when, turns in conv["sessions"]:
            for i, (dia, text) in enumerate(turns):
                speaker = text.split(":", 1)[0]
                if speaker not in speakers:
                    speakers.append(speaker)
                message_id = new_id("message")
                turns_of[message_id] = dia
                created = (when or datetime(2023, 1, 1, tzinfo=UTC)).replace(second=0) + timedelta(seconds=i)
                conn.execute(
                    "INSERT INTO messages (id, organization_id, agent_id, role, text, created_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    (message_id, org, agent_id, "user" if speaker == speakers[0] else "assistant", text, created),
                )
                count += 1
    while True:
        with db.transaction() as conn:
            if recall_memory.index_pending(conn, org, agent_id) == 0:
                break
    return count


def evaluate(
    db: Database,
    org: str,
    questions: list,
    weights: tuple[float, float] | None,
    turns_of: dict[str, str] | None,
    exact_max_rows: int,
) -> dict:
    recall: dict[int, list[float]] = {k: [] for k in KS}
    by_cat: dict[tuple[int, int], list[float]] = defaultdict(list)
    any5: list[bool] = []
    all5: list[bool] = []
    latencies: list[float] = []
    for agent_id, (question, evidence, category) in questions:
        started = time.perf_counter()
        with db.transaction() as conn:
            if turns_of is not None:
                found = recall_memory.search(conn, org, agent_id, question, limit=max(KS))
                ranked = [turns_of[m["id"]] for m in found]
            else:
                hits = archival.search_hits(
                    conn, org, agent_id, question, top_k=max(KS), weights=weights, exact_max_rows=exact_max_rows
                )
                ranked = [h.passage.metadata["dia_id"] for h in hits]
        latencies.append(time.perf_counter() - started)
        wanted = set(evidence)
        for k in KS:
            r = len(wanted & set(ranked[:k])) / len(wanted)
            recall[k].append(r)
            by_cat[(category, k)].append(r)
        top_sessions: list[int] = []
        for dia in ranked:
            s = session_of(dia)
            if s not in top_sessions:
                top_sessions.append(s)
            if len(top_sessions) == 5:
                break
        evidence_sessions = {session_of(e) for e in evidence}
        any5.append(bool(evidence_sessions & set(top_sessions)))
        all5.append(evidence_sessions <= set(top_sessions))
    return {"recall": recall, "by_cat": by_cat, "any5": any5, "all5": all5, "latencies": latencies}


def report(name: str, result: dict) -> None:
    recall, by_cat = result["recall"], result["by_cat"]
    n = len(recall[1])
    print(f"\n[{name}]")
    header = "".join(f"  R@{k:<4}" for k in KS)
    print(f"{'':14}{header}   n")
    print(f"{'overall':14}" + "".join(f"  {statistics.fmean(recall[k]):.3f} " for k in KS) + f"  {n}")
    for cat, label in CATEGORIES.items():
        vals = [statistics.fmean(by_cat[(cat, k)]) for k in KS]
        print(f"{label:14}" + "".join(f"  {v:.3f} " for v in vals) + f"  {len(by_cat[(cat, 1)])}")
    print(f"session any@5 {statistics.fmean(result['any5']):.3f}   all@5 {statistics.fmean(result['all5']):.3f}")
    latencies = sorted(result["latencies"])
    print(
        f"search latency (top 50, query embedding included): p50 {1000 * latencies[n // 2]:.1f} ms  "
        f"p95 {1000 * latencies[int(n * 0.95)]:.1f} ms"
    )


if __name__ == "__main__":
    main()
