"""The hot path's trip from the event loop to a thread and back (o/api/hot.py).

The route functions are synchronous (psycopg's blocking connections), so each hot request runs on a
thread. ``loop.run_in_executor`` on a ThreadPoolExecutor made that trip cost 12% of a GET messages'
CPU under load (py-spy): per request a concurrent Future (a Condition, a lock), the executor's
semaphore and locks, an asyncio Future chained to the concurrent one by callbacks on both sides. Here
a request is one tuple on a C queue that a thread blocks on (no Python lock), and the answer one
``call_soon_threadsafe`` that resolves the awaiting Future on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any

_Job = tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], contextvars.Context, Callable[..., Any], tuple[Any, ...]]


class ThreadHop:
    """``size`` threads (started with the first request) that run functions for coroutines."""

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on one of the threads, in a copy of the caller's context (its trace, its log
        keys, as anyio's hop), its result or its exception returned to the awaiting coroutine."""
        if len(self.threads) < self.size:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.jobs.put((loop, future, contextvars.copy_context(), fn, args))
        return await future

    def _start(self) -> None:
        with self.lock:
            while len(self.threads) < self.size:
                thread = threading.Thread(target=self._serve, name=f"{self.name}_{len(self.threads)}", daemon=True)
                thread.start()
                self.threads.append(thread)

    def _serve(self) -> None:
        while (job := self.jobs.get()) is not None:
            _run(*job)
            del job  # not kept alive (nor its answer) by a thread waiting for the next one


def _run(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    context: contextvars.Context,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    try:
        result = context.run(fn, *args)
    except BaseException as exc:  # handed to the awaiting coroutine, which raises it
        _resolve(loop, future, _failed, exc)
    else:
        _resolve(loop, future, _succeeded, result)


def _resolve(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], how: Callable[..., None], what: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits the answer any more
        loop.call_soon_threadsafe(how, future, what)


def _succeeded(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():  # the awaiting coroutine may have been cancelled
        future.set_result(result)


def _failed(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
