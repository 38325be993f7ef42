"""Data-directory faults of the embedded store: a damaged, full, read-only or deleted data
directory is one clear `StoreUnavailableError` naming the folder and what to do, and
`citebot index --rebuild` recovers from damage by moving the broken files aside."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromadb.errors import InternalError

from index.chroma import ChromaConnection
from index.chunking import ChunkingConfig
from index.corpus import Corpus
from index.store import IndexMissingError, StoreUnavailableError
from index.store_errors import StoreDamagedError
from tests.helpers.chroma import LEASE_SECONDS, server_mode
from tests.helpers.corpora import write_articles
from tests.helpers.embedders import MemoisingEmbedder
from tests.helpers.mounts import read_only_view, tmpfs
from tests.helpers.settings import retrieval_config

pytestmark = pytest.mark.skipif(server_mode(), reason="faults of the embedded store's files")

ARTICLES = {
    "avocado.md": "---\ntitle: Avocado\n---\nMeta's model Avocado distils Gemma, gpt-oss and Qwen.",
    "llama.md": "---\ntitle: Llama\n---\nLlama 4 disappointed Silicon Valley. Its team moved.",
}
QUESTION = "Which models does Avocado distil?"


@pytest.fixture(scope="module")
def embedder(e5) -> MemoisingEmbedder:
    return MemoisingEmbedder(e5)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_articles(tmp_path / "articles", ARTICLES)


def _corpus(data_dir: Path, embedder) -> Corpus:
    connection = ChromaConnection(data_dir, None, LEASE_SECONDS)
    return Corpus(connection, "articles", embedder, ChunkingConfig(64, 8))


def test_a_damaged_store_says_rebuild_and_rebuild_moves_it_aside(tmp_path, folder, embedder):
    data_dir = tmp_path / "data"
    _corpus(data_dir, embedder).sync([folder])
    database = data_dir / "chroma" / "chroma.sqlite3"
    with database.open("r+b") as file:
        file.write(os.urandom(4096))  # garbage over the header

    with pytest.raises(StoreDamagedError) as damaged:
        _corpus(data_dir, embedder).retriever(retrieval_config())
    message = str(damaged.value)
    assert str(data_dir / "chroma") in message
    assert "citebot index --rebuild" in message
    assert "\n" not in message

    report = _corpus(data_dir, embedder).sync([folder], rebuild=True)
    assert sorted(report.added) == sorted(ARTICLES)
    [broken] = data_dir.glob("chroma.broken-*")
    assert (broken / "chroma.sqlite3").exists(), "the damaged files are kept for inspection"
    hits = _corpus(data_dir, embedder).retriever(retrieval_config()).retrieve(QUESTION, 1).chunks
    assert hits[0].article_id == "avocado.md"


def test_a_deleted_data_directory_says_to_index(tmp_path, folder, embedder):
    data_dir = tmp_path / "data"
    _corpus(data_dir, embedder).sync([folder])
    shutil.rmtree(data_dir)
    later = _corpus(data_dir, embedder)
    later._connection.reopen()  # as a process started after the deletion would open it
    with pytest.raises(IndexMissingError, match="citebot index"):
        later.retriever(retrieval_config())


@pytest.mark.parametrize(
    ("number", "advice"),
    [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "fix the folder's permissions")],
)
def test_os_errors_from_chroma_become_one_line_naming_the_folder(
    tmp_path, folder, embedder, monkeypatch, number, advice
):
    data_dir = tmp_path / "data"
    corpus = _corpus(data_dir, embedder)
    corpus.sync([folder])
    (folder / "new.md").write_text("A new article about glasses.", encoding="utf-8")
    store_type = type(corpus.store())

    def fail(*_: object, **__: object) -> None:
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(store_type, "write_versions", _guarded_failure(fail))
    with pytest.raises(StoreUnavailableError) as fault:
        corpus.sync([folder])
    assert str(data_dir / "chroma") in str(fault.value)
    assert advice in str(fault.value)


def _guarded_failure(fail):
    """A store method that fails inside the connection's guard, as Chroma's calls do."""

    def method(self, *args: object, **kwargs: object) -> None:
        with self._connection.guard():
            fail(*args, **kwargs)

    return method


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs mounted for the test."""
    with tmpfs(tmp_path / "tmpfs") as mount:
        yield mount


def test_a_full_file_system_says_free_space(small_disk, folder, embedder, caplog):
    subprocess.run(["mount", "-o", "remount,size=300k", str(small_disk)], check=True)
    with pytest.raises(StoreUnavailableError, match="disk is full") as fault:
        _corpus(small_disk / "data", embedder).sync([folder])
    assert str(small_disk / "data" / "chroma") in str(fault.value)
    # The error is the one line a user reads: no warning about the lease before it.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_store_failing_on_a_filled_disk_says_free_space(tmp_path, folder, embedder):
    """Once a write failed on a full disk, Chroma's later errors name its compactor or logs
    ("Error sending backfill request to compactor"), not the disk: the free space tells."""
    compactor = InternalError("Error executing plan: Error sending backfill request to compactor")
    with tmpfs(tmp_path / "tmpfs", size="96m") as disk:
        connection = ChromaConnection(disk / "data", None, LEASE_SECONDS)
        Corpus(connection, "articles", embedder, ChunkingConfig(64, 8)).sync([folder])
        with (disk / "filler").open("wb") as filler, contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * 65536)
        full = pytest.raises(StoreUnavailableError, match=r"the disk is full \(0 MB free\)")
        with full as fault, connection.guard():
            raise compactor
        assert str(disk / "data" / "chroma") in str(fault.value)
        (disk / "filler").unlink()
        # With room, the error is shown as Chroma gives it.
        roomy = pytest.raises(StoreUnavailableError, match="backfill request to compactor")
        with roomy, connection.guard():
            raise compactor


def test_a_read_only_file_system_says_fix_permissions(tmp_path, folder, embedder):
    _corpus(tmp_path / "data", embedder).sync([folder])
    (folder / "new.md").write_text("A new article about glasses.", encoding="utf-8")
    with read_only_view(tmp_path / "data", tmp_path / "read-only") as read_only:
        for attempt in (
            lambda: _corpus(read_only, embedder).sync([folder]),
            lambda: _corpus(read_only, embedder).retriever(retrieval_config()),
        ):
            with pytest.raises(
                StoreUnavailableError, match="fix the folder's permissions"
            ) as fault:
                attempt()
            assert str(read_only) in str(fault.value)
