"""Pure steps of archival inserts and recall indexing: what is stored, chunked and mixed."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from o.errors import InvalidInput
from o.memory.archival import MAX_TEXT_CHARS, PassageInput, parse_tag_match, passage_inputs, time_range
from o.memory.passage_index import split
from o.memory.recall import CONTEXT_WINDOW, indexed_message
from o.store.passages import CONTEXT_WEIGHT


def test_one_text_carries_the_given_tags_metadata_and_time() -> None:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    assert passage_inputs("note", ["a"], {"k": 1}, at) == [PassageInput("note", ["a"], {"k": 1}, at)]
    assert passage_inputs("note", None, None, None) == [PassageInput("note", (), {}, None)]
    given = [PassageInput("one"), PassageInput("two", ("t",))]
    assert passage_inputs(given, ["ignored"], None, None) == given
    assert passage_inputs([], None, None, None) == []


@pytest.mark.parametrize("text", ["", "   \n"])
def test_a_passage_needs_text(text: str) -> None:
    with pytest.raises(InvalidInput, match="non-empty text"):
        passage_inputs([PassageInput("fine"), PassageInput(text)], None, None, None)


def test_a_passage_has_a_size_limit() -> None:
    with pytest.raises(InvalidInput, match=f"at most {MAX_TEXT_CHARS}"):
        passage_inputs("x" * (MAX_TEXT_CHARS + 1), None, None, None)


def test_long_texts_split_into_numbered_chunks_and_short_ones_stay_whole() -> None:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    long = PassageInput("One two three. Four five six. Seven eight.", ("t",), {"chunk_count": 99, "k": 1}, at)
    short = PassageInput("  Short one.  ", (), {"k": 2})
    pieces = split([long, short], 3)
    assert [p.text for p in pieces] == ["One two three.", "Four five six.", "Seven eight.", "Short one."]
    assert [p.metadata for p in pieces] == [
        {"chunk_count": 99, "k": 1, "chunk_index": 0},
        {"chunk_count": 99, "k": 1, "chunk_index": 1},
        {"chunk_count": 99, "k": 1, "chunk_index": 2},
        {"k": 2},
    ]
    assert all(p.tags == ("t",) and p.created_at == at for p in pieces[:3])
    # without chunking each text is stored exactly as given
    assert [p.text for p in split([long, short], 3, chunk=False)] == [long.text, short.text]
    assert split([short], 3)[0].metadata is not short.metadata


def test_tag_match_and_time_range_are_checked() -> None:
    assert parse_tag_match("any") == "any" and parse_tag_match("all") == "all"
    with pytest.raises(InvalidInput, match="tag_match_mode"):
        parse_tag_match("some")
    assert time_range(None, "") == (None, None)
    start, end = time_range("2024-01-01", "2024-01-31")
    assert start == datetime(2024, 1, 1, tzinfo=UTC)
    assert end is not None and (end.day, end.hour, end.minute) == (31, 23, 59)
    with pytest.raises(InvalidInput, match="after its end"):
        time_range("2024-02-01", "2024-01-01")


def _row(n: int, text: str) -> dict[str, object]:
    return {"id": f"message-{n}", "text": text}


def test_a_message_is_indexed_with_the_searchable_messages_before_it() -> None:
    texts = ["first", "", "second", "third", "fourth"]
    rows = [_row(i, t or "raw") for i, t in enumerate(texts)]
    basis = np.eye(5, dtype=np.float32)
    vectors = {i: basis[i] for i, t in enumerate(texts) if t}

    item = indexed_message(rows[4], 4, texts, vectors)
    assert CONTEXT_WINDOW == 2
    assert (item.id, item.source_text, item.search_text, item.context) == (
        "message-4",
        "fourth",
        "fourth",
        "second\nthird",
    )
    expected = basis[4] + CONTEXT_WEIGHT * (basis[2] + basis[3])
    assert item.embedding is not None
    assert np.allclose(item.embedding, expected / np.linalg.norm(expected), atol=1e-6)

    # the empty message is marked done with nothing to search; the first has no context
    empty = indexed_message(rows[1], 1, texts, vectors)
    assert (empty.source_text, empty.search_text, empty.context, empty.embedding) == ("raw", "", "", None)
    first = indexed_message(rows[0], 0, texts, vectors)
    assert first.context == "" and first.embedding is not None and np.allclose(first.embedding, basis[0])
