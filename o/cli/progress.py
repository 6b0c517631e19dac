"""Progress bars for long CLI work (export, import, migrations, file ingestion), on stderr and only for a person
at a terminal: in a pipe or a test the output stays the lines it always was."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


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


@contextmanager
def steps(label: str) -> Iterator[Callable[[int, int, str], None]]:
    """Yields ``update(done, total, what)``: ``done`` of ``total`` steps (migration files, chunks), ``what`` the
    one under way. The bar appears with the first update: work that turns out to have no steps shows nothing."""
    if not sys.stderr.isatty():
        yield lambda done, total, what: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[what]}"))
    with ExitStack() as opened:
        shown: list[tuple[Progress, TaskID]] = []

        def update(done: int, total: int, what: str) -> None:
            if not shown:
                console = Console(stderr=True)
                progress = opened.enter_context(
                    Progress(*columns, TimeElapsedColumn(), transient=True, console=console)
                )
                shown.append((progress, progress.add_task(label, total=total or None, what=what)))
            progress, task = shown[0]
            progress.update(task, completed=done, total=total or None, what=what)

        yield update
