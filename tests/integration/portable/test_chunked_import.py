"""A bundle import as a job that commits in chunks over several runs (o/agent/portable/chunked.py): run
after run with no time left past one chunk, it ends with the same agent as one run does; a run that
dies mid-chunk loses that chunk only and the next one goes on without duplicating a row; until the
last chunk the organization sees nothing of the agent; a bundle found bad in a later chunk ends the job
in error with every row of the earlier chunks removed, and the uploaded bytes with them."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from o.agent import transfer_jobs, uploads
from o.agent.file_services import TransferServices
from o.agent.portable import bundle, frames
from o.agent.transfer_jobs import Jobs
from o.memory.files.blobs import LocalBlobStore
from o.store import orgs
from o.store import transfers as store
from o.store.db import Database
from tests.integration.portable.conftest import history, read_model, rich_agent, vectors, without
from tests.servers.openai_server import OpenAIServer


@dataclass
class Target:
    """The server the agent arrives at: its database, an organization and its client, the jobs' store."""

    db: Database
    org: str
    client: TestClient
    jobs: Jobs

    def upload(self, data: bytes, name: str) -> str:
        """An upload session holding ``data``, queued as an import job."""
        services = TransferServices(self.jobs.blobs)
        created = uploads.create(self.db, services, self.org, uploads.NewUpload("bundle", len(data), name=name))
        self.jobs.blobs.put(created.row["blob_key"], data, frames.MEDIA_TYPE)
        with self.db.transaction() as conn:
            store.queue(conn, created.row["id"])
        return str(created.row["id"])

    def job(self, upload_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM transfers WHERE id = %s", (upload_id,)).fetchone()
        assert row is not None
        return dict(row)


@pytest.fixture
def arrival(target_app: FastAPI, second_db: Database, tmp_path: Path) -> Iterator[Target]:
    with second_db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"arrivals-{uuid.uuid4()}")["id"]
        _, key = orgs.create_api_key(conn, org)
    jobs = Jobs(second_db, LocalBlobStore(tmp_path / "blobs"), lease_s=60, chunk_s=0)  # one frame a chunk
    with TestClient(target_app, headers={"Authorization": f"Bearer {key}"}) as client:
        yield Target(second_db, org, client, jobs)


@pytest.fixture
def framed(source: TestClient, openai_server: OpenAIServer, db: Database) -> tuple[str, bytes]:
    """A rich agent and its bundle in many small frames (two rows a frame): many chunks to import."""
    agent_id = rich_agent(source, openai_server, db)
    for i in range(7):
        source.post(f"/v1/agents/{agent_id}/archival-memory", json={"text": f"Kim's note {i}"}).raise_for_status()
    with db.read() as conn:
        org = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent_id,)).fetchone()
    data = b"".join(bundle.export(db, org["organization_id"], agent_id, batch=2))
    return agent_id, data


def _no_time_left() -> float:
    return 0.0


def _runs(jobs: Jobs, upload_id: str, remaining: Callable[[], float] | None = _no_time_left) -> int:
    """Run the job until it ends, each run handed the job on by the last; how many runs it took."""
    runs = 0
    while True:
        ran = transfer_jobs.run(jobs, upload_id, remaining)
        assert ran is not None and ran.upload_id == upload_id
        runs += 1
        if not ran.handed_on:
            return runs


def _rows(result: dict[str, Any]) -> dict[str, int]:
    """The rows an import wrote, but tools: the second import reuses the tools the first one added."""
    return {table: n for table, n in result["rows"].items() if table != "tools"}


def _same_agent(target: Target, one: str, other: str) -> None:
    # a message's seq_id is its place in the server's one sequence: like an id, each copy's own
    assert without(read_model(target.client, one), {"seq_id"}) == without(read_model(target.client, other), {"seq_id"})
    assert vectors(target.db, one) == vectors(target.db, other)
    assert history(target.db, one) == history(target.db, other)


def _stored(db: Database) -> dict[str, int]:
    with db.read() as conn:
        found = conn.execute(
            "SELECT (SELECT count(*) FROM organizations) AS organizations, (SELECT count(*) FROM agents) AS agents,"
            " (SELECT count(*) FROM passages) AS passages, (SELECT count(*) FROM messages) AS messages,"
            " (SELECT count(*) FROM blocks) AS blocks, (SELECT count(*) FROM tools) AS tools,"
            " (SELECT count(*) FROM agent_revisions) AS revisions, (SELECT count(*) FROM runs) AS runs"
        ).fetchone()
    assert found is not None
    return dict(found)


def test_an_import_over_many_runs_equals_one_run(
    framed: tuple[str, bytes], arrival: Target, source: TestClient
) -> None:
    agent_id, data = framed
    whole = arrival.upload(data, "moved")
    assert _runs(arrival.jobs, whole, remaining=None) == 1
    one_run = arrival.job(whole)["result"]["agent_id"]

    chunked = arrival.upload(data, "moved")
    blocks = arrival.client.get("/v1/blocks/").json()
    for _ in range(12):  # part of the way: twelve runs of one chunk each
        ran = transfer_jobs.run(arrival.jobs, chunked, _no_time_left)
        assert ran is not None and ran.handed_on
    job = arrival.job(chunked)
    assert job["status"] == "queued" and job["attempts"] == 0 and job["progress"]["frame"] == 12
    shown = arrival.client.get(f"/v1/uploads/{chunked}").json()
    assert shown["status"] == "queued" and shown["progress"]["frames"] == 12, shown
    assert shown["progress"]["rows"] == job["progress"]["result"]["rows"] and shown["progress"]["rows"]["agents"] == 1
    # half an agent is nowhere to be seen: not listed, not found, nor its blocks
    half = job["progress"]["result"]["agent_id"]
    assert [a["id"] for a in arrival.client.get("/v1/agents/").json()] == [one_run]
    assert arrival.client.get(f"/v1/agents/{half}").status_code == 404
    assert arrival.client.get(f"/v1/agents/{half}/archival-memory").status_code == 404
    assert arrival.client.get("/v1/blocks/").json() == blocks

    runs = 12 + _runs(arrival.jobs, chunked)
    total = len(list(frames.read(io.BytesIO(data))))
    assert runs == total + 1, (runs, total)  # one frame each, then one that reads the end and finishes
    done = arrival.job(chunked)
    assert done["status"] == "completed" and done["result"]["agent_id"] == half
    assert arrival.client.get(f"/v1/uploads/{chunked}").json()["progress"] is None
    assert _rows(done["result"]) == _rows(arrival.job(whole)["result"])
    assert arrival.jobs.blobs.size(done["blob_key"]) is None  # imported for good: the bytes are gone
    _same_agent(arrival, one_run, half)
    assert read_model(arrival.client, half)["passages"] == read_model(source, agent_id)["passages"]


class Killed(BaseException):
    """What a process killed mid-chunk does to the import: it stops there, its transaction uncommitted
    (not an Exception: nothing of the job's own handling runs)."""


def _kill(db: Database) -> None:
    raise Killed


def _drop_connection(db: Database) -> None:
    """The database drops the run's connection (its server process terminated) in mid-transaction."""
    with psycopg.connect(db.url, autocommit=True) as admin:
        dropped = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND state = 'idle in transaction' AND pid <> pg_backend_pid()"
        ).fetchall()
    assert len(dropped) == 1


@pytest.mark.parametrize(("crash", "left"), [(_kill, "running"), (_drop_connection, "queued")])
def test_a_run_that_dies_mid_chunk_is_resumed_without_duplicates(
    framed: tuple[str, bytes], arrival: Target, crash: Callable[[Database], None], left: str
) -> None:
    _, data = framed
    whole = arrival.upload(data, "moved")
    _runs(arrival.jobs, whole, remaining=None)
    crashed = arrival.upload(data, "moved")
    asked = 0

    def dies_in_the_sixth_chunk() -> float:
        # asked after each frame applied (before its chunk commits) and after each commit: the
        # eleventh time is the sixth chunk's frame, applied and not committed
        nonlocal asked
        asked += 1
        if asked == 11:
            crash(arrival.db)
        return 1.0

    if crash is _kill:
        with pytest.raises(Killed):
            transfer_jobs.run(arrival.jobs, crashed, dies_in_the_sixth_chunk)
    else:  # the run's failure is the job's to handle: released for a retry
        ran = transfer_jobs.run(arrival.jobs, crashed, dies_in_the_sixth_chunk)
        assert ran is not None and not ran.handed_on
    job = arrival.job(crashed)
    # the chunks before the crash are committed with their cursor; the one it was in is not. A killed
    # run holds its lease; a failed one gives the job back for a retry
    assert job["status"] == left and job["progress"]["frame"] == 5, job
    assert arrival.client.get(f"/v1/agents/{job['progress']['result']['agent_id']}").status_code == 404
    if left == "running":  # while its lease holds nobody takes it; once it has run out, the next run does
        assert transfer_jobs.run(arrival.jobs, crashed) is None
        with arrival.db.transaction() as conn:
            conn.execute("UPDATE transfers SET claimed_until = now() - interval '1 second' WHERE id = %s", (crashed,))
    assert _runs(arrival.jobs, crashed, remaining=None) == 1
    done = arrival.job(crashed)
    assert done["status"] == "completed" and done["attempts"] == 2
    assert _rows(done["result"]) == _rows(arrival.job(whole)["result"])
    _same_agent(arrival, arrival.job(whole)["result"]["agent_id"], done["result"]["agent_id"])


def _frames(data: bytes) -> list[dict[str, Any]]:
    return list(frames.read(io.BytesIO(data)))


def _with_a_bad_last_section(data: bytes) -> bytes:
    """The bundle with its last section naming a column no server has, written with a valid checksum."""
    bodies = _frames(data)
    last = max(i for i, b in enumerate(bodies) if "section" in b)
    bodies[last] = {**bodies[last], "columns": [["no_such_column", "text", False], *bodies[last]["columns"][1:]]}
    writer = frames.FrameWriter()
    return b"".join(writer.frame(b) for b in bodies) + writer.trailer()


@pytest.mark.parametrize(
    ("spoil", "says", "chunks"),
    [
        (_with_a_bad_last_section, "no_such_column", True),  # found after many chunks were committed
        (lambda d: d.replace(b"Kim likes sailing", b"Kim likes sailinG"), "checksum", False),  # found first
        (lambda d: d[: len(d) - 300], "truncated", False),
    ],
)
def test_a_bundle_found_bad_leaves_nothing_behind(
    framed: tuple[str, bytes], arrival: Target, spoil: Callable[[bytes], bytes], says: str, chunks: bool
) -> None:
    _, data = framed
    before = _stored(arrival.db)
    bad = arrival.upload(spoil(data), "bad")
    for _ in range(5):
        ran = transfer_jobs.run(arrival.jobs, bad, _no_time_left)
        assert ran is not None
        if not ran.handed_on:
            break
    job = arrival.job(bad)
    assert (job["status"], job["progress"] is not None) == (("queued", True) if chunks else ("error", False)), job
    if chunks:  # rows of the earlier chunks are in the database (hidden): the end removes them
        assert _stored(arrival.db) != before
        _runs(arrival.jobs, bad)
    job = arrival.job(bad)
    assert job["status"] == "error" and says in job["error_message"], job
    assert _stored(arrival.db) == before
    assert arrival.client.get("/v1/agents/").json() == []
    assert arrival.jobs.blobs.size(job["blob_key"]) is None  # the uploaded bytes are removed with it


def _age(db: Database, upload_id: str, *, lease_s: float, written_s: float) -> None:
    """The job as time would leave it: its lease ending ``lease_s`` from now, last written ``written_s`` ago."""
    with db.transaction() as conn:
        conn.execute(
            "UPDATE transfers SET claimed_until = now() + make_interval(secs => %s),"
            " updated_at = now() - make_interval(secs => %s) WHERE id = %s",
            (lease_s, written_s, upload_id),
        )


def test_an_import_given_up_on_leaves_nothing_behind(framed: tuple[str, bytes], arrival: Target) -> None:
    """Its message dead-lettered (transfer_jobs.give_up): once no run may be at the job, it ends in error
    with the reason and what to do, the rows of its committed chunks and its uploaded bytes removed."""
    _, data = framed
    before = _stored(arrival.db)
    upload_id = arrival.upload(data, "never-finished")
    for _ in range(3):  # three chunks committed (hidden), then runs that were killed
        assert transfer_jobs.run(arrival.jobs, upload_id, _no_time_left) == transfer_jobs.Ran(upload_id, True)
    with arrival.db.transaction() as conn:
        assert store.claim(conn, 60, upload_id) is not None  # a run that holds the job now
    assert _stored(arrival.db) != before
    assert transfer_jobs.give_up(arrival.jobs, upload_id, 5, quiet_s=120) is False
    _age(arrival.db, upload_id, lease_s=-1, written_s=30)  # its lease ran out, but it was written lately
    assert transfer_jobs.give_up(arrival.jobs, upload_id, 5, quiet_s=120) is False
    assert arrival.job(upload_id)["status"] == "running"

    _age(arrival.db, upload_id, lease_s=-1, written_s=600)
    assert transfer_jobs.give_up(arrival.jobs, upload_id, 5, quiet_s=120) is True
    job = arrival.job(upload_id)
    assert job["status"] == "error", job
    assert job["error_message"].startswith("given up after 5 deliveries to the ingest function")
    assert "start a new upload session" in job["error_message"]
    assert _stored(arrival.db) == before
    assert arrival.client.get("/v1/agents/").json() == []
    assert arrival.jobs.blobs.size(job["blob_key"]) is None
    # what the client polls has ended, with the reason
    polled = arrival.client.get(f"/v1/uploads/{upload_id}").json()
    assert polled["status"] == "error" and polled["error_message"] == job["error_message"], polled
    # a duplicate dead letter: done with, nothing changes
    assert transfer_jobs.give_up(arrival.jobs, upload_id, 5, quiet_s=0) is True
    assert arrival.job(upload_id) == job


def test_an_import_that_finished_is_not_given_up_on(framed: tuple[str, bytes], arrival: Target) -> None:
    """A dead letter whose job later finished (another message's run completed it) leaves it alone."""
    _, data = framed
    upload_id = arrival.upload(data, "finished")
    _runs(arrival.jobs, upload_id)
    _age(arrival.db, upload_id, lease_s=-1, written_s=3600)
    done = arrival.job(upload_id)
    assert done["status"] == "completed"
    assert transfer_jobs.give_up(arrival.jobs, upload_id, 5, quiet_s=0) is True
    assert arrival.job(upload_id) == done
    assert [a["id"] for a in arrival.client.get("/v1/agents/").json()] == [done["result"]["agent_id"]]
    assert transfer_jobs.give_up(arrival.jobs, f"upload-{uuid.uuid4()}", 5, quiet_s=0) is True  # gone
    # an export no run finished says to ask for it again; the agent it was of is untouched
    services = TransferServices(arrival.jobs.blobs)
    export = uploads.start_export(arrival.db, services, arrival.org, done["result"]["agent_id"])["id"]
    _age(arrival.db, export, lease_s=-1, written_s=600)
    assert transfer_jobs.give_up(arrival.jobs, export, 5, quiet_s=120) is True
    ended = arrival.job(export)
    assert ended["status"] == "error" and ended["error_message"].endswith("request the export again"), ended
    assert [a["id"] for a in arrival.client.get("/v1/agents/").json()] == [done["result"]["agent_id"]]
