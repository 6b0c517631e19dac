"""The hot path's thread hop (o/api/hop.py): the function runs on one of its threads, in a copy of the
caller's context, and its result or its exception reaches the awaiting coroutine."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from o.api.hop import ThreadHop

_REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


def _seen() -> tuple[str, str]:
    seen = _REQUEST.get()
    _REQUEST.set("set on the thread")  # in the copy only
    return seen, threading.current_thread().name


def _fails() -> None:
    raise LookupError("from the thread")


def test_the_function_runs_on_a_hop_thread_in_a_copy_of_the_callers_context() -> None:
    async def main() -> list[tuple[str, str]]:
        hop = ThreadHop(2, "o-test")
        answers = []
        for request in ("a", "b", "c"):
            _REQUEST.set(request)
            answers.append(await hop.run(_seen))
            assert _REQUEST.get() == request  # the thread's change stayed in its copy
        assert len(hop.threads) == 2
        return answers

    answers = asyncio.run(main())
    assert [seen for seen, _ in answers] == ["a", "b", "c"]
    assert all(name.startswith("o-test_") for _, name in answers)


def test_the_functions_exception_is_raised_in_the_awaiting_coroutine() -> None:
    async def main() -> None:
        hop = ThreadHop(1, "o-test")
        with pytest.raises(LookupError, match="from the thread"):
            await hop.run(_fails)
        assert await hop.run(_seen) == ("none", "o-test_0")  # the thread lives on

    asyncio.run(main())


def test_concurrent_calls_all_get_their_own_answers() -> None:
    async def main() -> list[int]:
        hop = ThreadHop(3, "o-test")
        return list(await asyncio.gather(*(hop.run(pow, n, 2) for n in range(50))))

    assert asyncio.run(main()) == [n * n for n in range(50)]
