"""One connection pool per process, shared by local mode and Lambda.

Locally the pool holds several connections for the server's worker threads; in Lambda
it holds one (module scope, reused across invocations), opened with prepared
statements disabled so RDS Proxy can multiplex it.

When the server cannot be reached (the embedded Postgres was killed and is being restarted, RDS
fails over) every borrow fails fast with :class:`DatabaseUnavailable`, which the API answers with a
503 and ``Retry-After``, instead of waiting out the pool's 30 s default and answering 500. The pool
reconnects by itself once the server is back.
"""

from __future__ import annotations

import contextvars
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
import pydantic_core
from pgvector.psycopg import register_vector
from psycopg import pq
from psycopg.rows import dict_row
from psycopg.types import TypeInfo
from psycopg.types.json import set_json_loads
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout, TooManyRequests

from o.errors import OError
from o.observability import logger

Conn = psycopg.Connection[dict[str, Any]]
T = TypeVar("T")

# SQLSTATEs of a connection that is gone: class 08 (connection exception), and the server shutting
# down or starting up (admin_shutdown, crash_shutdown, cannot_connect_now).
_LOST_STATES = frozenset({"57P01", "57P02", "57P03"})

# A connection given back this recently is lent again unchecked. Longer idle (a Lambda frozen between
# invocations, when RDS Proxy or a failover may drop it) is checked; a connection that dies inside the
# window fails its borrower with DatabaseUnavailable, which is retried, as a death mid-statement is.
FRESH_S = 5.0


class DatabaseUnavailable(OError):
    """The database cannot be reached right now (restarting, failing over, or every connection busy);
    nothing was written. Retry after ``retry_after_s`` seconds."""

    status_code = 503
    code = "database_unavailable"
    retry_after_s = 1


def connection_lost(exc: psycopg.Error, conn: Conn | None) -> bool:
    """Whether ``exc`` means the connection (or the server) is gone, as opposed to a statement's own
    error (a lock timeout or a cancelled query is an OperationalError too, on a healthy connection)."""
    if conn is not None and conn.closed:
        return True
    state = exc.sqlstate or ""
    return state.startswith("08") or state in _LOST_STATES


# A check the API sets for one request: run on the first connection the request borrows, before any
# statement of its own (the request's API key, when its organization came from the process's cache).
# Context-local, so it follows the request onto the thread pool and never into another request.
borrow_check: contextvars.ContextVar[Callable[[Conn], None] | None] = contextvars.ContextVar(
    "o_borrow_check", default=None
)


def _checked(conn: Conn) -> None:
    check = borrow_check.get()
    if check is not None:
        check(conn)


class Database:
    """A pool of psycopg connections that return rows as dicts.

    ``acquire_timeout_s``: the longest a borrow waits for a free connection while the database is
    healthy (all connections busy); ``outage_wait_s``: how long while it is known to be unreachable.
    ``reconnect_timeout_s`` is short on purpose: after it the pool stops its own backoff and the next
    borrow tries to connect at once, so it is back within about a second of the server.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        prepared_statements: bool = True,
        acquire_timeout_s: float = 10.0,
        outage_wait_s: float = 1.0,
        connect_timeout_s: int = 5,
        reconnect_timeout_s: float = 1.0,
        password: Callable[[], str] | None = None,
        recheck_after_s: float = FRESH_S,
    ) -> None:
        self.url = url
        # a one-connection pool's connection idle this long is checked when borrowed (0: at every borrow)
        self.recheck_after_s = recheck_after_s
        self.acquire_timeout_s = acquire_timeout_s
        self.outage_wait_s = outage_wait_s
        kwargs: dict[str, Any] = {"row_factory": dict_row, "autocommit": False}
        if "connect_timeout" not in url:
            kwargs["connect_timeout"] = connect_timeout_s
        if not prepared_statements:
            kwargs["prepare_threshold"] = None
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            # A password made for each new connection (an IAM token, valid 15 minutes): the pool asks for
            # the keyword arguments at every connect.
            kwargs=kwargs if password is None else _with_password(kwargs, password),
            configure=_configure,
            # A one-connection pool (Lambda) checks a borrowed connection (an empty query, a round trip)
            # unless it came back within FRESH_S: a step borrows it several times in a row.
            check=self._check_unless_fresh if max_size == 1 else None,
            reset=self._returned_now if max_size == 1 else None,
            open=False,
            name="o",
            reconnect_timeout=reconnect_timeout_s,
        )
        # when each connection was last given back (wall clock: it goes on while a Lambda is frozen)
        self._returned_at: weakref.WeakKeyDictionary[Conn, float] = weakref.WeakKeyDictionary()
        # set when a borrowed connection turned out dead; cleared by the next borrow that works
        self._down = False
        self._checking = threading.Lock()

    @property
    def max_size(self) -> int:
        """The most connections the pool opens (what a caller may have in use at once)."""
        return self._pool.max_size

    def _check_unless_fresh(self, conn: Conn) -> None:
        if time.time() - self._returned_at.get(conn, 0.0) >= self.recheck_after_s:
            ConnectionPool.check_connection(conn)

    def _returned_now(self, conn: Conn) -> None:
        self._returned_at[conn] = time.time()

    def open(self, wait_seconds: float = 30.0, *, wait: bool = True) -> Database:
        """``wait=False`` (a Lambda's start-up): the pool connects in the background while the
        handler finishes importing, and the first borrow waits for that connection (at most
        ``acquire_timeout_s``, then :class:`DatabaseUnavailable`)."""
        self._pool.open(wait=wait, timeout=wait_seconds)
        return self

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def transaction(self) -> Iterator[Conn]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        with self._borrow() as conn:
            _checked(conn)
            yield conn

    @contextmanager
    def read(self) -> Iterator[Conn]:
        """A connection in autocommit for a read of a statement or two: no BEGIN and no COMMIT
        round trip (together a third of a GET's time under load). Only for reads that need no single
        snapshot across statements; anything that writes uses :meth:`transaction`."""
        with self._borrow() as conn:
            conn.autocommit = True
            try:
                _checked(conn)
                yield conn
            finally:
                if not conn.closed:
                    conn.autocommit = False

    # A connection in autocommit for ONE statement that is its own transaction (a write whose checks are
    # in the statement itself): no BEGIN and no COMMIT round trip. The same as read, not a context manager
    # around it (a second generator per PATCH, 2% of its CPU).
    statement = read

    @contextmanager
    def transaction_opened_by(self, first: Callable[[Conn], T]) -> Iterator[tuple[Conn, T]]:
        """A transaction, as :meth:`transaction` (committed on success, rolled back on error), whose BEGIN
        goes out with ``first``'s statements in one round trip: ``first`` sends them on the connection in
        pipeline mode and returns their cursors (results are read after, in the body). psycopg's own BEGIN,
        in pipeline mode, waits for its answer before anything else: one round trip more. The connection
        is in autocommit, its transaction begun by an explicit BEGIN, so everything the body sends is in it."""
        with self.read() as conn:
            try:
                with conn.pipeline():
                    conn.execute("BEGIN")
                    opened = first(conn)
                yield conn, opened
                conn.execute("COMMIT")
            except BaseException:
                if not conn.closed and conn.info.transaction_status != pq.TransactionStatus.IDLE:
                    try:
                        conn.execute("ROLLBACK")
                    except psycopg.Error as exc:  # the connection broke: the server rolls back by itself
                        logger.debug("rollback failed", extra={"error": str(exc)})
                raise

    def ping(self) -> None:
        """One statement's round trip to the server; raises DatabaseUnavailable when it cannot be reached."""
        with self.read() as conn:
            conn.execute("SELECT 1")

    @contextmanager
    def connection(self) -> Iterator[Conn]:
        """Alias of :meth:`transaction`; every borrowed connection is one transaction."""
        with self.transaction() as conn:
            yield conn

    @contextmanager
    def _borrow(self) -> Iterator[Conn]:
        conn: Conn | None = None
        timeout = self.outage_wait_s if self._down else self.acquire_timeout_s
        try:
            with self._pool.connection(timeout=timeout) as conn:
                yield conn
        except (PoolTimeout, TooManyRequests, PoolClosed) as exc:  # no connection in time, or the pool is closed
            raise DatabaseUnavailable(f"the database is unavailable: {exc}") from exc
        except psycopg.OperationalError as exc:
            if not connection_lost(exc, conn):
                raise
            self._lost()
            raise DatabaseUnavailable("the database connection was lost; nothing was committed") from exc
        self._down = False

    def _lost(self) -> None:
        """A connection died, so the server restarted or is gone: the pool's other idle connections
        are dead too. Drop them now (in the background) rather than hand each to one more request."""
        self._down = True
        if not self._checking.acquire(blocking=False):
            return

        def check() -> None:
            try:
                self._pool.check()
            except Exception as exc:  # the pool closed meanwhile; nothing left to check
                logger.debug("pool check failed", extra={"error": str(exc)})
            finally:
                self._checking.release()

        threading.Thread(target=check, name="o-pool-check", daemon=True).start()


def _with_password(kwargs: dict[str, Any], password: Callable[[], str]) -> Callable[[], dict[str, Any]]:
    """The pool's connect arguments with a fresh ``password()`` each time. The pool connects from its own
    worker threads, which start with an empty context: the password is made in (a copy of) the context
    of the code that opened the database, so what it does is attributed to that code (its logger's keys,
    its trace, the IAM test's recorder)."""
    opened_in = contextvars.copy_context()

    def connect_kwargs() -> dict[str, Any]:
        return {**kwargs, "password": opened_in.copy().run(password)}

    return connect_kwargs


def _configure(conn: Conn) -> None:
    # json/jsonb columns parsed by pydantic-core's parser (Rust, ~3x the standard library's speed): an
    # agent's tools' schemas and a history page's contents were a third of a list's CPU with json.loads
    set_json_loads(pydantic_core.from_json, conn)
    # `o migrate` opens the pool on a database the migrations have not yet given the extension (a new,
    # empty one): its connections have no vector type to register, and need none.
    if TypeInfo.fetch(conn, "vector") is not None:
        register_vector(conn)
    # The pool calls configure outside a transaction; leave none open.
    conn.commit()


def begin_again(conn: Conn) -> None:
    """Roll back the transaction of :meth:`Database.transaction_opened_by` and begin another, in one round trip."""
    with conn.pipeline():
        conn.execute("ROLLBACK")
        conn.execute("BEGIN")


def outside_transaction(conn: Conn) -> bool:
    """Whether the connection's statements are each their own transaction (autocommit, no BEGIN sent):
    a read then sees committed rows only."""
    return conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE


def probe(url: str) -> None:
    """Open one connection to ``url`` and close it: raises the driver's OperationalError when the server
    cannot be reached or refuses (before a pool, whose opening waits out its whole timeout)."""
    with psycopg.connect(url, autocommit=True):
        pass


def connection_limit(conn: Conn) -> int:
    """How many connections the server accepts from ordinary users."""
    row = conn.execute(
        """SELECT current_setting('max_connections')::int
                  - current_setting('superuser_reserved_connections')::int AS n"""
    ).fetchone()
    assert row is not None
    return int(row["n"])
