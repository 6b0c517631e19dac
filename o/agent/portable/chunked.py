"""A bundle imported in chunks, each its own transaction, over as many runs as it takes: a 100k-passage
agent is ~40 minutes of HNSW inserts, and an AWS Lambda invocation lasts 15 at most.

1. :func:`verify` reads the whole stored bundle first: a truncated or tampered file is refused before
   anything is written. The pass costs seconds (it decodes frames, it inserts nothing); rolling back
   chunks committed over half an hour because the last frame showed the checksum wrong would cost
   that half hour, and would have let rows of a file nobody vouched for into the database meanwhile.
2. :meth:`Chunks.step` applies frames in the caller's transaction, which also stores
   :meth:`Chunks.progress`: how many frames are applied, the ids given so far, and the hidden
   organization the rows wait in (:mod:`o.store.import_stages`). A run that stops (out of time) or
   dies leaves the chunks it committed with their cursor; the next run reads the bundle again from
   its start, passing over the frames already applied (opening their sections, writing nothing),
   and goes on from the cursor. A chunk is committed with its cursor or not at all.
3. The step that reads the end moves the rows to the importing organization in its transaction:
   until then no query of the organization sees the agent or any of its rows. :func:`discard`
   removes what the chunks of a failed import wrote.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, BinaryIO

from o.agent.portable import file_bytes, frames
from o.agent.portable.bundle import UNSTAGED, Imported, ImportState
from o.agent.portable.frames import BundleError
from o.store import bundle as bundle_store
from o.store import import_stages
from o.store.db import Conn


def verify(stream: BinaryIO) -> None:
    """BundleError unless the stream is a whole bundle whose frames count and checksum match."""
    for _ in frames.read(stream):
        pass


class Chunks:
    """One run of an import: the stored bundle read once, from its start, applied from ``progress``
    (None: from nothing)."""

    def __init__(
        self, organization_id: str, stream: BinaryIO, progress: dict[str, Any] | None, *, name: str | None, label: str
    ) -> None:
        self.organization_id = organization_id
        self.name = name
        self.label = label
        self._frames = frames.read(stream)
        self._saved = progress or {}
        self.applied = int(self._saved.get("frame", 0))
        self._read = 0
        self._state: ImportState | None = None

    def step(self, conn: Conn, enough: Callable[[], bool]) -> Imported | None:
        """Apply frames until ``enough()`` (asked after each frame applied) or the bundle's end; the
        import's result once it has ended (its rows the organization's, in this transaction)."""
        state = self._state_in(conn)
        for body in self._frames:
            self._read += 1
            if self._read <= self.applied:
                state.pass_over(body)
                continue
            state.apply(body)
            self.applied += 1
            if enough():
                return None
        return self._finish(conn, state)

    def progress(self) -> dict[str, Any]:
        """Where the import is, for the transaction of the chunk just applied to store."""
        state = self._state
        assert state is not None
        return {
            "verified": True,
            "frame": self.applied,
            "stage": state.stage,
            "namespace": str(state.namespace),
            "ids": state.ids,
            "variables": state.variables,
            "result": None if state.result is None else asdict(state.result),
        }

    def _state_in(self, conn: Conn) -> ImportState:
        if self._state is None:
            received = file_bytes.Received(None, self.organization_id)  # a job stores no file bytes
            self._state = state = ImportState(conn, self.organization_id, self.name, received)
            saved = self._saved
            if saved.get("stage"):
                state.stage = str(saved["stage"])
                state.namespace = uuid.UUID(saved["namespace"])
                state.ids = dict(saved["ids"])
                state.variables = list(saved["variables"])
                state.result = None if saved["result"] is None else Imported(**saved["result"])
            else:  # committed with the first chunk, or not at all
                state.stage = import_stages.create(conn, self.label)
        self._state.conn = conn
        return self._state

    def _finish(self, conn: Conn, state: ImportState) -> Imported:
        if state.result is None:
            raise BundleError("the bundle holds no agent")
        state.result.unset_variables = sorted(state.variables)
        assert state.stage is not None
        staged = [t for t in bundle_store.SCOPES if t not in UNSTAGED]
        import_stages.adopt(conn, state.stage, self.organization_id, staged)
        import_stages.drop(conn, state.stage)
        return state.result


def discard(conn: Conn, progress: dict[str, Any] | None) -> None:
    """Remove what the committed chunks of a failed import wrote (nothing, if none committed)."""
    if progress and progress.get("stage"):
        import_stages.drop(conn, str(progress["stage"]))
