"""The framing of O's bundle file: versioned, checksummed msgpack, written and read one frame at a time.

A bundle is a plain sequence of msgpack values, each a ``bin`` holding one msgpack-encoded frame (a
map). Hashing the frames' own bytes is what makes the checksum exact without decoding anything twice:

1. the header, ``{"format": "o-agent-bundle", "version": 1, ...}``;
2. any number of section and row frames (:mod:`o.agent.portable.bundle` says what they hold);
3. the trailer, ``{"end": true, "frames": N, "sha256": HEX}``: how many frames came before it and
   the SHA-256 of their bytes, in order.

A reader refuses what is not a bundle, a version newer than it reads, a frame over the size limit, a
stream that ends before its trailer (truncated), a count or checksum that does not match (tampered),
and anything after the trailer. Frames are verified as they are read, but the checksum only at the
end: whoever applies frames as they come must do it in one transaction and commit after the trailer,
or read the whole stream first (an import in chunks does: :mod:`o.agent.portable.chunked`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import msgpack

from o.errors import InvalidInput

FORMAT = "o-agent-bundle"
# the newest version this code writes and reads; a reader takes every version up to it
VERSION = 1
MEDIA_TYPE = "application/x-msgpack"
# the largest single frame a reader accepts (a batch of rows is far smaller)
MAX_FRAME_BYTES = 64 * 1024 * 1024


class BundleError(InvalidInput):
    """The bundle cannot be imported (nothing of it was stored)."""

    code = "invalid_bundle"


class FrameWriter:
    """Turns frames into the bytes of a bundle, keeping the running count and checksum."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.frames = 0

    def frame(self, body: dict[str, Any]) -> bytes:
        inner = msgpack.packb(body, use_bin_type=True, datetime=True)
        self._hash.update(inner)
        self.frames += 1
        return _wrap(inner)

    def trailer(self) -> bytes:
        return _wrap(msgpack.packb({"end": True, "frames": self.frames, "sha256": self._hash.hexdigest()}))


def _wrap(inner: bytes) -> bytes:
    return msgpack.packb(inner, use_bin_type=True)


def header(**fields: Any) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, **fields}


def read(stream: BinaryIO, *, read_size: int = 1024 * 1024) -> Iterator[dict[str, Any]]:
    """The frames of a bundle, header first, trailer verified (and not yielded) at the end."""
    unpacker = msgpack.Unpacker(
        stream,
        read_size=read_size,
        max_buffer_size=MAX_FRAME_BYTES + 16,
        max_bin_len=MAX_FRAME_BYTES,
        raw=False,
    )
    digest = hashlib.sha256()
    count = 0
    values = _values(unpacker)
    for inner in values:
        body = _decode(inner, count)
        if body.get("end") is True:
            _check_trailer(body, count, digest.hexdigest())
            if next(values, None) is not None:
                raise BundleError("the bundle has data after its end")
            return
        if count == 0:
            check_header(body)
        digest.update(inner)
        count += 1
        yield body
    if count == 0:
        raise BundleError("the bundle is empty")
    raise BundleError(f"the bundle is truncated: it ends after {count} frames, before its end marker")


def _values(unpacker: msgpack.Unpacker) -> Iterator[bytes]:
    while True:
        try:
            value = next(unpacker)
        except StopIteration:
            return
        except (ValueError, msgpack.UnpackException) as exc:  # malformed bytes, or a frame over the limit
            raise BundleError(f"not an O bundle (unreadable msgpack: {exc})") from exc
        if not isinstance(value, bytes):
            raise BundleError("not an O bundle (expected a sequence of msgpack frames)")
        yield value


def _decode(inner: bytes, index: int) -> dict[str, Any]:
    try:
        body = msgpack.unpackb(inner, raw=False, timestamp=3, strict_map_key=True)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise BundleError(f"frame {index} of the bundle is unreadable: {exc}") from exc
    if not isinstance(body, dict):
        raise BundleError(f"frame {index} of the bundle is not a map")
    return body


def check_header(body: dict[str, Any]) -> None:
    if body.get("format") != FORMAT:
        raise BundleError(f"not an O bundle (its first frame names format {body.get('format')!r}, not {FORMAT!r})")
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleError(f"the bundle's version {version!r} is not a version number")
    if version > VERSION:
        raise BundleError(
            f"the bundle is version {version}; this server reads versions up to {VERSION} (upgrade O to import it)",
            version=version,
            supported=VERSION,
        )


def _check_trailer(body: dict[str, Any], count: int, digest: str) -> None:
    if count == 0:
        raise BundleError("not an O bundle (it ends before its header)")
    if body.get("frames") != count:
        raise BundleError(f"the bundle's end marker counts {body.get('frames')!r} frames, but {count} came before it")
    if body.get("sha256") != digest:
        raise BundleError("the bundle's checksum does not match its contents (the file was changed or damaged)")
