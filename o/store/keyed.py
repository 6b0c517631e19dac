"""The request's API key, checked against the database on every request, by the request's own connection.

A key whose organization this process already knows (a key never changes organization) is still looked up
on every request, so a key revoked by a committed `o keys revoke` is refused by the very next request, in
every process and on Lambda. :class:`KeyCheck` does it as the first statement on the first connection the
request borrows (:data:`o.store.db.borrow_check`).

On the hot path (o/api/hot.py) that statement of its own was half of a read's round trips and a third of
its time under load (README, performance). There the check rides on the route's first statement instead:
its rows exist only while the key is this organization's and unrevoked (:func:`with_key`), and when it
finds nothing, the key is checked by itself before anything else runs (:func:`settle`), so a revoked key
is never told "not found", and nothing the route reads after is read for it.
"""

from __future__ import annotations

from typing import Any

from o.errors import Unauthorized
from o.store.db import Conn, borrow_check
from o.store.orgs import hash_key, organization_for_key

# true while the key is this organization's and not revoked; a one-time filter of the plan (an InitPlan on
# the unique index of key_hash), which leaves the statement's own plan as it was
_KEY_HOLDS = "EXISTS (SELECT FROM api_keys WHERE key_hash = %s AND organization_id = %s AND revoked_at IS NULL)"


class KeyCheck:
    """The check of a key whose organization the process knows, set for one request.

    ``in_statement``: the request's first statement carries it (a hot route whose first statement is
    keyed by :func:`with_key`); otherwise, and on any later connection while it is not done, it runs as a
    statement of its own (which also notes the key's use, :func:`o.store.orgs.organization_for_key`)."""

    __slots__ = ("borrowed", "done", "in_statement", "key_hash", "organization_id", "secret")

    def __init__(
        self, secret: str, organization_id: str, *, in_statement: bool = False, key_hash: str | None = None
    ) -> None:
        self.secret = secret
        self.key_hash = key_hash or hash_key(secret)
        self.organization_id = organization_id
        self.in_statement = in_statement
        self.borrowed = False
        self.done = False

    def __call__(self, conn: Conn) -> None:
        """Run when a connection is borrowed (:data:`o.store.db.borrow_check`)."""
        if self.done:
            return
        if self.in_statement and not self.borrowed:
            self.borrowed = True  # the route's first statement checks it (with_key, settle)
            return
        self.verify(conn)

    def verify(self, conn: Conn) -> None:
        if organization_for_key(conn, self.secret) != self.organization_id:
            raise Unauthorized("invalid or revoked API key")
        self.done = True

    def riding(self) -> bool:
        """Whether the next statement on the request's connection is to carry the check."""
        return self.in_statement and self.borrowed and not self.done


def _riding() -> KeyCheck | None:
    check = borrow_check.get()
    return check if isinstance(check, KeyCheck) and check.riding() else None


def with_key(condition: str, params: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """``condition`` (a WHERE's, with its parameters), and, while the request's key is to be checked by this
    statement, that the key holds; the caller then calls :func:`settle` with whether anything was found."""
    check = _riding()
    if check is None:
        return condition, params
    return f"{condition} AND {_KEY_HOLDS}", (*params, check.key_hash, check.organization_id)


def settle(conn: Conn, found: bool) -> None:
    """After a statement keyed by :func:`with_key`: found rows prove the key held when it ran; nothing
    found may mean a revoked key, so the key is checked by itself (Unauthorized if it does not hold)."""
    check = _riding()
    if check is None:
        return
    if found:
        check.done = True
    else:
        check.verify(conn)
