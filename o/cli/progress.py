"""Progress bars for long CLI work (export, import), on stderr and only for a person at a terminal: in a
pipe or a test the output stays the lines it always was."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn


@contextmanager
def bar(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``: n more bytes done of ``total`` (None: unknown, the bar shows bytes so far)."""
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, TimeRemainingColumn(), transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)
