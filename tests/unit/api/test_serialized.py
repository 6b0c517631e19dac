"""The per-process cache of written JSON (o/api/serialized.py) stays within its bound, empty values
included, and gives each key's bytes in the order asked."""

from __future__ import annotations

from o.api.serialized import SerializedCache, assembled


def test_the_cache_stays_within_its_bound_dropping_the_oldest_first() -> None:
    cache = SerializedCache(max_bytes=2_000)
    for i in range(1_000):
        cache.put(f"message-{i}", b"")  # a message Letta does not show: nothing to write, but an entry
    assert 0 < len(cache) < 20
    assert cache.get("message-999") == b"" and cache.get("message-0") is None
    cache.put("big", b"x" * 5_000)  # larger than the whole cache: not kept, nothing else dropped
    assert cache.get("big") is None and cache.get("message-999") == b""


def test_assembled_writes_only_what_is_missing_under_the_version_it_read() -> None:
    cache = SerializedCache(max_bytes=10_000)
    cache.put("a|1", b"A1")
    asked: list[list[str]] = []

    def write(missing: list[str]) -> dict[str, tuple[str, bytes]]:
        asked.append(missing)
        # b changed since its key was read (written at version 3); c is gone
        return {"b|2": ("b|3", b"B3")}

    assert assembled(cache, ["a|1", "b|2", "c|1"], write) == [b"A1", b"B3"]
    assert asked == [["b|2", "c|1"]]
    assert cache.get("b|3") == b"B3" and cache.get("b|2") is None
