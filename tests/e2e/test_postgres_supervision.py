"""`o serve` keeps its embedded Postgres alive and takes it down with it.

Real processes and real signals: Postgres is killed with SIGKILL under a running server, and the
server is stopped with SIGTERM and SIGINT.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import postgres_of, start_serve
from tests.servers.fixtures import openai_server  # noqa: F401  (fixture)
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, fail

# the agents' endpoint is the protocol server on loopback, which the operator lets agents name (a
# setting of the outbound URL policy; where the policy does not exist yet it is only warned about)
LOOPBACK_LLM = {"OPENAI_API_KEY": "sk-test", "O_LLM_ALLOWED_ENDPOINTS": "127.0.0.1"}
# Bounds that tell "answered/stopped at once" from "waited out a 30 s pool timeout or a client's
# retries", with room for a loaded machine; the real figures are measured by bench/chaos.py
# (a 503 in milliseconds, a stop in ~0.6-0.8 s).
# a request while Postgres is down must be answered at once, never after a pool's 30 s wait
FAST_S = 5.0
STOP_S = 10.0
RECOVERY_S = 10.0


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_killed_postgres_is_restarted_and_meanwhile_requests_get_a_fast_503(data_dir: Path, workers: str) -> None:
    # with two workers, each worker process's own pool recovers once the parent restarted Postgres
    process = start_serve(data_dir, {"O_SLEEPTIME": "false", "O_WORKERS": workers})
    try:
        key = process.server.new_key()
        with httpx.Client(base_url=process.server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
            agent = http.post("/v1/agents/", json={"memory_blocks": [{"label": "human", "value": "v0"}]}).json()
            acknowledged = http.patch(f"/v1/agents/{agent['id']}/core-memory/blocks/human", json={"value": "v1"})
            assert acknowledged.status_code == 200

            old_pid = postmaster_pid(data_dir)
            os.kill(old_pid, signal.SIGKILL)
            killed = time.monotonic()
            # its backends notice within milliseconds; ask only once they are gone
            while [p for p in postgres_of(data_dir) if p.pid != old_pid]:
                time.sleep(0.005)
            statuses = []
            recovered_after = None
            while time.monotonic() - killed < RECOVERY_S + 5:
                asked = time.monotonic()
                r = http.get("/v1/health/")
                took = time.monotonic() - asked
                assert took < FAST_S, f"a request took {took:.1f} s while Postgres was down"
                statuses.append(r.status_code)
                if r.status_code == 200:
                    recovered_after = time.monotonic() - killed
                    break
                assert r.status_code == 503, r.text
                assert int(r.headers["retry-after"]) >= 1
                assert r.json()["code"] == "database_unavailable"
                time.sleep(0.05)
            assert recovered_after is not None and recovered_after < RECOVERY_S, statuses
            assert postmaster_pid(data_dir) != old_pid

            # every request works again, through the same pool, and the acknowledged write survived
            deadline = time.monotonic() + 5
            while (r := http.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human")).status_code == 503:
                assert time.monotonic() < deadline, "authenticated requests did not recover"
                time.sleep(0.1)
            assert r.status_code == 200 and r.json()["value"] == "v1"
            r = http.patch(f"/v1/agents/{agent['id']}/core-memory/blocks/human", json={"value": "v2"})
            assert r.status_code == 200
    finally:
        process.stop()
    assert postgres_of(data_dir) == []


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_stops_postgres_with_the_server(data_dir: Path, sig: signal.Signals, workers: str) -> None:
    process = start_serve(data_dir, {"O_SLEEPTIME": "false", "O_WORKERS": workers})
    assert postgres_of(data_dir)
    asked = time.monotonic()
    process.proc.send_signal(sig)
    exit_code = process.proc.wait(timeout=20)
    took = time.monotonic() - asked
    process.log.close()
    assert exit_code == 0
    assert took < STOP_S, f"o serve took {took:.1f} s to stop"
    assert postgres_of(data_dir) == []


def test_ctrl_c_is_quick_while_a_failing_sleeptime_pass_retries(
    data_dir: Path,
    openai_server: OpenAIServer,  # noqa: F811
) -> None:
    # every LLM call fails: each pass fails after its client's retries, and the scheduler tries again
    openai_server.script.default = fail(500, "upstream down")
    env = {"O_SLEEPTIME": "true", "O_SLEEPTIME_POLL_SECONDS": "0.2", **LOOPBACK_LLM}
    process = start_serve(data_dir, env)
    try:
        key = process.server.new_key()
        llm = {
            "model": "gpt-4o-mini",
            "model_endpoint_type": "openai",
            "model_endpoint": openai_server.base_url,
            "context_window": 128000,
        }
        with httpx.Client(base_url=process.server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
            agent = http.post("/v1/agents/", json={"llm_config": llm}).json()
            # the send fails too, but its message is news for sleep-time
            r = http.post(f"/v1/agents/{agent['id']}/messages", json={"messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code >= 500
        sent = len(openai_server.requests)
        deadline = time.monotonic() + 30
        while len(openai_server.requests) <= sent:  # a pass is under way, in its client's retries
            assert time.monotonic() < deadline, "no sleep-time pass started"
            time.sleep(0.05)
        asked = time.monotonic()
        process.proc.send_signal(signal.SIGINT)
        assert process.proc.wait(timeout=30) == 0, process.tail()
        took = time.monotonic() - asked
    finally:
        process.stop()
    assert took < STOP_S, f"Ctrl-C took {took:.1f} s"
    assert postgres_of(data_dir) == []


def test_a_failing_sleeptime_pass_backs_off_with_one_log_line_each(
    data_dir: Path,
    openai_server: OpenAIServer,  # noqa: F811
) -> None:
    openai_server.script.default = fail(500, "upstream down")
    env = {
        "O_SLEEPTIME": "true",
        "O_SLEEPTIME_POLL_SECONDS": "0.1",
        "O_LLM_MAX_RETRIES": "0",  # each pass fails at once: without a backoff, one every 0.1 s
        **LOOPBACK_LLM,
    }
    process = start_serve(data_dir, env)
    try:
        key = process.server.new_key()
        llm = {
            "model": "gpt-4o-mini",
            "model_endpoint_type": "openai",
            "model_endpoint": openai_server.base_url,
            "context_window": 128000,
        }
        with httpx.Client(base_url=process.server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
            agent = http.post("/v1/agents/", json={"llm_config": llm}).json()
            http.post(f"/v1/agents/{agent['id']}/messages", json={"messages": [{"role": "user", "content": "hi"}]})
        time.sleep(4.0)
    finally:
        process.stop()
    log = next(data_dir.glob("serve-*.log")).read_text()
    failures = [line for line in log.splitlines() if '"message":"sleep-time pass failed"' in line]
    # 0.1, 0.2, 0.4, 0.8, 1.6 s apart: a handful in 4 s, not forty
    assert 1 <= len(failures) <= 8, len(failures)
    assert "Traceback" not in log
    assert all(len(line) < 1000 for line in failures)


def test_a_run_under_way_when_postgres_dies_does_not_stay_running(
    data_dir: Path,
    openai_server: OpenAIServer,  # noqa: F811
) -> None:
    # the reply comes after Postgres was killed (and restarted): storing it, or failing the run, must
    # still happen, so the run ends one way or the other instead of staying "running"
    openai_server.push(Reply(text="late answer", delay_s=2.0))
    process = start_serve(data_dir, {"O_SLEEPTIME": "false", **LOOPBACK_LLM})
    try:
        key = process.server.new_key()
        llm = {
            "model": "gpt-4o-mini",
            "model_endpoint_type": "openai",
            "model_endpoint": openai_server.base_url,
            "context_window": 128000,
        }
        with httpx.Client(base_url=process.server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
            agent = http.post("/v1/agents/", json={"llm_config": llm}).json()
            run = http.post(
                f"/v1/agents/{agent['id']}/messages/async", json={"messages": [{"role": "user", "content": "hi"}]}
            ).json()
            deadline = time.monotonic() + 10
            while not openai_server.requests:
                assert time.monotonic() < deadline, "the run never called its model"
                time.sleep(0.02)
            os.kill(postmaster_pid(data_dir), signal.SIGKILL)
            deadline = time.monotonic() + 30
            while True:
                r = http.get(f"/v1/runs/{run['id']}")
                if r.status_code == 200 and r.json()["status"] in ("completed", "failed"):
                    break
                assert time.monotonic() < deadline, f"the run stayed {r.json().get('status', r.status_code)}"
                time.sleep(0.2)
            ended = r.json()
            if ended["status"] == "failed":
                assert "database" in ended["error"].lower()
    finally:
        process.stop()
