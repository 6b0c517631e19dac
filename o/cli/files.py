"""`o files upload FOLDER PATH...`: upload files into a folder of a running O and wait for each to be ingested
(parsed, chunked, embedded), showing its progress: the processing status, then the chunks embedded so far.

Through the public API with Letta's SDK (``folders.files.upload`` / ``retrieve``), like `o agents`; the folder
is named by id or by name. A file that ends in ``error`` is named with its reason and the command exits 1."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from letta_client import Letta

from o.cli import remote
from o.cli.progress import steps
from o.errors import InvalidInput, NotFound

SETTLED = ("completed", "error")
# the statuses before embedding, counted as steps of a file whose chunks are not known yet
STAGES = ("pending", "parsing", "embedding")


def find_folder(api: Letta, ref: str) -> Any:
    """The folder ``ref`` names: an id (``source-…``), else the one folder with that name."""
    if ref.startswith("source-"):
        return api.folders.retrieve(ref)
    matches = [f for f in api.folders.list(name=ref) if f.name == ref]
    if not matches:
        raise NotFound(f"no folder named {ref!r} (create one with the API: client.folders.create(name=...))")
    return matches[0]


def wait(api: Letta, folder_id: str, file_id: str, told: Callable[[int, int, str], None], timeout_s: float) -> Any:
    """The file once ingestion settled it (completed or error), telling ``told`` how far it got."""
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        meta = api.folders.files.retrieve(file_id, folder_id=folder_id)
        status = str(meta.processing_status)
        if meta.total_chunks:
            told(meta.chunks_embedded or 0, meta.total_chunks, f"{status}: chunks embedded")
        elif status in STAGES:
            told(STAGES.index(status), len(STAGES), status)
        if status in SETTLED:
            return meta
        if time.monotonic() > deadline:
            raise InvalidInput(
                f"{meta.file_name} is still {status} after {timeout_s:.0f} s (--timeout)", field="timeout"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)


def upload(args: argparse.Namespace) -> int:
    api = remote.client(args)
    folder = find_folder(api, args.folder)
    failed = 0
    for path in args.paths:
        with path.open("rb") as source:
            sent = api.folders.files.upload(
                folder.id, file=(path.name, source.read()), duplicate_handling=args.duplicate_handling
            )
        if args.no_wait:
            print(f"{path}: {sent.processing_status} ({sent.id})")
            continue
        with steps(f"ingesting {path.name}") as told:
            meta = wait(api, folder.id, sent.id, told, args.timeout)
        if meta.processing_status == "error":
            failed += 1
            print(f"o: {path}: ingestion failed: {meta.error_message}", file=sys.stderr)
        else:
            print(f"{path}: {meta.processing_status}, {meta.total_chunks or 0} chunks ({meta.id})")
    return 1 if failed else 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("files", help="files of folders on a running O (over its API)")
    files = p.add_subparsers(dest="files_command", required=True)
    q = files.add_parser("upload", help="upload files into a folder and wait until each is searchable")
    remote.add_flags(q)
    q.add_argument("folder", metavar="FOLDER", help="the folder's id or name")
    q.add_argument("paths", metavar="PATH", type=Path, nargs="+", help="the files to upload")
    q.add_argument(
        "--duplicate-handling",
        choices=("suffix", "skip", "error", "replace"),
        default="suffix",
        help="a file of the same name in the folder: keep both (suffix, the default), skip, refuse, or replace it",
    )
    q.add_argument("--no-wait", action="store_true", help="return once uploaded; do not wait for ingestion")
    q.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for each file (default 600)")
    q.set_defaults(func=upload)
