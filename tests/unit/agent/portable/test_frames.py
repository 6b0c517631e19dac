"""The bundle's framing: what a writer writes a reader reads back; anything else is refused by name."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import msgpack
import pytest

from o.agent.portable import frames
from o.agent.portable.frames import BundleError, FrameWriter

BODIES: list[dict[str, Any]] = [
    frames.header(agent_id="agent-1", exported_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    {"section": "passages", "version": 1, "columns": [["id", "text", False], ["embedding_384", "vector", True]]},
    {"rows": [["passage-1", b"\x00\x03\x00\x00" + b"\x3f\x80\x00\x00" * 3], ["passage-2", None]]},
]


def written(bodies: list[dict[str, Any]] = BODIES) -> bytes:
    writer = FrameWriter()
    return b"".join(writer.frame(b) for b in bodies) + writer.trailer()


def read(data: bytes, read_size: int = 7) -> list[dict[str, Any]]:
    return list(frames.read(io.BytesIO(data), read_size=read_size))


def test_what_is_written_is_read_back_frame_by_frame() -> None:
    assert read(written()) == BODIES
    # a large read size and one byte at a time read the same frames
    assert read(written(), read_size=1 << 20) == read(written(), read_size=1) == BODIES


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (written()[:-1], "truncated"),
        (written()[: len(written()) // 2], "truncated"),
        (written().replace(b"passage-2", b"passage-3"), "checksum"),
        (written() + written(), "after its end"),
        (msgpack.packb({"format": frames.FORMAT}), "sequence of msgpack frames"),
        (b"\xc1\xc1\xc1", "unreadable msgpack"),
        (written([{**BODIES[0], "version": frames.VERSION + 1}, *BODIES[1:]]), f"version {frames.VERSION + 1}"),
        (written([{**BODIES[0], "version": "1"}, *BODIES[1:]]), "not a version number"),
        (written([{"format": "zip"}, *BODIES[1:]]), "not an O bundle"),
        (FrameWriter().frame(BODIES[0]) + msgpack.packb(msgpack.packb([1, 2])), "not a map"),
    ],
)
def test_a_damaged_or_foreign_file_is_refused(data: bytes, says: str) -> None:
    with pytest.raises(BundleError, match=says):
        read(data)


def test_a_trailer_that_miscounts_is_refused() -> None:
    writer = FrameWriter()
    data = b"".join(writer.frame(b) for b in BODIES)
    writer.frames += 1
    with pytest.raises(BundleError, match="counts 4 frames"):
        read(data + writer.trailer())
