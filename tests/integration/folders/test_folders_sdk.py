"""Folders and files through letta-client in strict mode: every operation, real documents, the
duplicate policies, the limits, and parse failures that leave the file in ``error`` with a reason."""

from __future__ import annotations

import letta_client
import pytest
from letta_client import Letta

from tests.integration.folders.conftest import FILES, Live, settled, upload


def test_folder_crud(letta: Letta) -> None:
    folder = letta.folders.create(name="docs", description="d", instructions="read me", metadata={"k": 1})
    assert folder.embedding_config.embedding_dim == 384
    assert letta.folders.retrieve(folder.id).name == "docs"
    assert letta.folders.update(folder.id, name="docs2", description="e").description == "e"
    assert [f.id for f in letta.folders.list(name="docs2")] == [folder.id]
    with pytest.raises(letta_client.ConflictError):
        letta.folders.create(name="docs2")
    letta.folders.delete(folder.id)
    with pytest.raises(letta_client.NotFoundError):
        letta.folders.retrieve(folder.id)


def test_documents_are_parsed_chunked_and_embedded(letta: Letta) -> None:
    folder = letta.folders.create(name="handbooks")
    files = {
        name: upload(letta, folder.id, name) for name in ("handbook.pdf", "policy.docx", "guide.md", "scheduler.js")
    }
    assert all(f.processing_status in ("pending", "parsing", "embedding", "completed") for f in files.values())
    done = {name: settled(letta, folder.id, f.id) for name, f in files.items()}
    for name, meta in done.items():
        assert meta.processing_status == "completed", (name, meta.error_message)
        assert meta.total_chunks and meta.chunks_embedded == meta.total_chunks
    pdf = letta.folders.files.retrieve(files["handbook.pdf"].id, folder_id=folder.id, include_content=True)
    assert pdf.content and "per diem for meals is 45 euros" in pdf.content
    assert done["handbook.pdf"].file_type == "application/pdf"
    listed = list(letta.folders.files.list(folder.id, limit=2))
    assert {f.id for f in listed} == {f.id for f in files.values()}  # the iterator pages through all four
    assert all(f.content is None for f in listed)


def test_duplicates_skip_error_suffix_replace(letta: Letta) -> None:
    folder = letta.folders.create(name="dups")
    first = upload(letta, folder.id, "guide.md")
    assert upload(letta, folder.id, "guide.md", duplicate_handling="skip").id == first.id
    with pytest.raises(letta_client.ConflictError):
        upload(letta, folder.id, "guide.md", duplicate_handling="error")
    suffixed = upload(letta, folder.id, "guide.md")  # Letta's default: suffix
    assert suffixed.file_name == "guide_(1).md" and suffixed.original_file_name == "guide.md"
    assert upload(letta, folder.id, "guide.md", duplicate_handling="suffix").file_name == "guide_(2).md"
    named = upload(letta, folder.id, "scheduler.js", name="jobs.js")
    assert named.file_name == "jobs.js"
    settled(letta, folder.id, first.id)
    replaced = upload(letta, folder.id, "guide.md", duplicate_handling="replace")
    assert replaced.id == first.id and replaced.processing_status == "pending"
    assert settled(letta, folder.id, first.id).processing_status == "completed"


def test_limits_and_unreadable_files(letta: Letta, live: Live) -> None:
    folder = letta.folders.create(name="limits")
    with pytest.raises(letta_client.APIStatusError) as refused:
        letta.folders.files.upload(folder.id, file=("photo.png", b"\x89PNG...."))
    assert refused.value.status_code == 415 and ".pdf" in str(refused.value.body)
    with pytest.raises(letta_client.APIStatusError) as big:
        letta.folders.files.upload(folder.id, file=("big.txt", b"x" * (256 * 1024 + 1)))
    assert big.value.status_code == 413
    locked = settled(letta, folder.id, upload(letta, folder.id, "locked.pdf").id)
    assert locked.processing_status == "error" and "encrypted" in (locked.error_message or "")
    assert locked.chunks_embedded == 0
    broken = settled(letta, folder.id, upload(letta, folder.id, "broken.pdf").id)
    assert broken.processing_status == "error" and "damaged" in (broken.error_message or "")
    # the original is kept: replacing it with a readable file processes it again
    with open(live_file("handbook.pdf"), "rb") as f:
        again = letta.folders.files.upload(folder.id, file=("broken.pdf", f.read()), duplicate_handling="replace")
    assert settled(letta, folder.id, again.id).processing_status == "completed"


def live_file(name: str) -> str:
    return str(FILES / name)


def test_attach_open_close_and_delete(letta: Letta, live: Live) -> None:
    folder = letta.folders.create(name="attached")
    md = upload(letta, folder.id, "guide.md")
    js = upload(letta, folder.id, "scheduler.js")
    settled(letta, folder.id, md.id), settled(letta, folder.id, js.id)
    agent = letta.agents.create(llm_config=live.llm_config(), memory_blocks=[{"label": "human", "value": "Ada"}])
    state = letta.agents.folders.attach(folder.id, agent_id=agent.id)
    assert state is not None and {"open_files", "grep_files", "semantic_search_files"} <= {t.name for t in state.tools}
    assert [f.id for f in letta.agents.folders.list(agent.id)] == [folder.id]
    assert letta.folders.agents.list(folder.id) == [agent.id]
    views = letta.agents.files.list(agent.id)
    assert {v.file_name for v in views.files} == {"guide.md", "scheduler.js"} and not any(
        v.is_open for v in views.files
    )
    assert letta.agents.files.open(md.id, agent_id=agent.id) == []
    opened = letta.agents.files.list(agent.id, is_open=True).files
    assert [v.file_id for v in opened] == [md.id] and "1: # Deployment guide" in (opened[0].visible_content or "")
    letta.agents.files.close(md.id, agent_id=agent.id)
    assert letta.agents.files.list(agent.id, is_open=True).files == []
    letta.agents.files.open(js.id, agent_id=agent.id)
    assert letta.agents.files.close_all(agent.id) == ["scheduler.js"]
    letta.folders.files.delete(js.id, folder_id=folder.id)
    assert [v.file_name for v in letta.agents.files.list(agent.id).files] == ["guide.md"]
    state = letta.agents.folders.detach(folder.id, agent_id=agent.id)
    assert state is not None and "grep_files" not in {t.name for t in state.tools}
    assert letta.agents.files.list(agent.id).files == []
    letta.folders.delete(folder.id)
