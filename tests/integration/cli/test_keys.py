"""`o keys create|list|revoke` through the real CLI (`o.cli.main`) on the real Postgres, and what a
revocation does to the next request (no cache anywhere: the very next request is refused)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from o.cli import main
from o.store import orgs
from o.store.db import Database


@pytest.fixture
def cli(pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Runs `o ...` against the test database; returns (exit code, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([*argv, "--database-url", pg_url, "--data-dir", str(tmp_path)])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def _key_row(listing: str, key_id: str) -> str:
    return next(line for line in listing.splitlines() if line.startswith(key_id))


def test_create_list_use_revoke(cli, app: FastAPI) -> None:  # type: ignore[no-untyped-def]
    org = f"keys-{uuid.uuid4()}"
    code, secret, err = cli("keys", "create", "--org", org, "--name", "laptop")
    assert code == 0 and secret.strip().startswith(orgs.KEY_PREFIX)
    key_id = err.split()[1]
    secret = secret.strip()

    code, listing, _ = cli("keys", "list", "--org", org)
    assert code == 0
    header = listing.splitlines()[0]
    assert header.split() == ["ID", "NAME", "ORGANIZATION", "CREATED", "LAST", "USED", "STATUS"]
    row = _key_row(listing, key_id)
    assert "laptop" in row and org in row and row.endswith("active") and " - " in row  # never used yet
    assert secret not in listing  # never the secret

    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        assert client.get("/v1/agents/").status_code == 200
        code, listing, _ = cli("keys", "list", "--org", org, "--json")
        [listed] = json.loads(listing)
        assert listed["id"] == key_id and listed["revoked_at"] is None and listed["name"] == "laptop"
        used = datetime.fromisoformat(listed["last_used_at"])
        assert abs((datetime.now(UTC) - used).total_seconds()) < 60

        code, out, _ = cli("keys", "revoke", key_id)
        assert code == 0 and f"revoked {key_id}" in out
        # the very next request: no cache to wait out
        refused = client.get("/v1/agents/")
        assert refused.status_code == 401 and refused.json()["detail"] == "invalid or revoked API key"

    code, listing, _ = cli("keys", "list", "--org", org)
    assert "revoked " in _key_row(listing, key_id)
    code, out, _ = cli("keys", "revoke", key_id)
    assert code == 0 and "was already revoked" in out
    code, _, err = cli("keys", "revoke", "key-00000000-0000-0000-0000-000000000000")
    assert code == 1 and "no API key" in err
    code, _, err = cli("keys", "list", "--org", f"nobody-{uuid.uuid4()}")
    assert code == 1 and "no organization" in err


def test_list_every_organization(cli, db: Database) -> None:  # type: ignore[no-untyped-def]
    names = [f"keys-all-{uuid.uuid4()}" for _ in range(2)]
    ids = []
    with db.transaction() as conn:
        for name in names:
            ids.append(orgs.create_api_key(conn, orgs.get_or_create_org(conn, name)["id"])[0])
    code, listing, _ = cli("keys", "list")
    assert code == 0
    for key_id, name in zip(ids, names, strict=True):
        assert name in _key_row(listing, key_id)


def test_last_use_is_written_at_most_once_a_minute(db: Database) -> None:
    with db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"keys-use-{uuid.uuid4()}")
        key_id, secret = orgs.create_api_key(conn, org["id"])

    def last_used() -> datetime | None:
        with db.read() as conn:
            return next(k for k in orgs.list_api_keys(conn, org["id"]) if k["id"] == key_id)["last_used_at"]

    with db.read() as conn:
        assert orgs.organization_for_key(conn, secret) == org["id"]
    first = last_used()
    assert first is not None
    with db.read() as conn:
        assert orgs.organization_for_key(conn, secret) == org["id"]
    assert last_used() == first  # a second use within the minute writes nothing
    with db.transaction() as conn:
        conn.execute("UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = %s", (key_id,))
    with db.read() as conn:
        orgs.organization_for_key(conn, secret)
    later = last_used()
    assert later is not None and later > first


def test_an_organization_can_revoke_only_its_own_keys(db: Database) -> None:
    with db.transaction() as conn:
        mine = orgs.get_or_create_org(conn, f"keys-mine-{uuid.uuid4()}")["id"]
        theirs = orgs.get_or_create_org(conn, f"keys-theirs-{uuid.uuid4()}")["id"]
        their_key, secret = orgs.create_api_key(conn, theirs)
        assert orgs.revoke_api_key(conn, their_key, mine) is None
        assert orgs.organization_for_key(conn, secret) == theirs
        revoked = orgs.revoke_api_key(conn, their_key, theirs)
        assert revoked is not None and revoked["just_revoked"]
        assert orgs.organization_for_key(conn, secret) is None


def test_the_key_alone_on_stdout_and_warnings_on_stderr(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # a script does `KEY=$(o keys create ...)`: a warning about a mistyped variable must not end up in it
    monkeypatch.setenv("O_DATABSE_URL", "postgresql://nowhere")
    code, out, err = cli("keys", "create", "--org", f"pipe-{uuid.uuid4()}", "--name", "ci")
    assert code == 0
    assert out.strip().startswith(orgs.KEY_PREFIX) and len(out.strip().splitlines()) == 1
    assert "O_DATABSE_URL is not a setting of O" in err
