"""The host's copy of the passages: what it holds matches Chroma, it follows reindexes, and a
file that cannot be used costs only speed."""

import logging
import sqlite3
from pathlib import Path

import numpy as np

from index import passage_replica
from index.chunking import ChunkingConfig
from index.corpus import Corpus
from index.passage_codec import pack_passages, unpack_passages
from index.passage_replica import PassageReplica, ReplicaRow
from index.records import PassageRecord
from tests.helpers.chroma import connection as chroma_connection
from tests.helpers.corpora import write_articles
from tests.helpers.mounts import read_only_view, tmpfs
from tests.helpers.settings import retrieval_config

ARTICLES = {
    "avocado.md": "---\ntitle: Avocado\n---\n"
    "Meta's model Avocado is expected next spring. It distils Gemma, gpt-oss and Qwen.",
    "llama.md": "---\ntitle: Llama\n---\nLlama 4 disappointed Silicon Valley. Its team moved.",
}


def packed(chunk_id: str, sentences: int, seed: int, dimension: int = 8) -> ReplicaRow:
    """A chunk with its passages packed as the store keeps them, with random unit vectors."""
    records = [
        PassageRecord(chunk_id, "sentence", "s", 10 * n, 10 * n + 9) for n in range(sentences)
    ] + [PassageRecord(chunk_id, "window", "w", 0, 19) for _ in range(max(sentences - 1, 1))]
    vectors = np.random.default_rng(seed).standard_normal((len(records), dimension))
    metadata = {"title": f"「{chunk_id}」", "date": None, "chunk": seed}
    return chunk_id, pack_passages(records, vectors.astype(np.float32)), f"text {seed}", metadata


def same(a, b) -> bool:
    return (
        a.spans == b.spans
        and np.array_equal(a.sentence_vectors, b.sentence_vectors)
        and np.array_equal(a.window_vectors, b.window_vectors)
    )


def test_it_returns_what_was_packed_and_forgets_chunks_no_longer_live(tmp_path: Path):
    replica = PassageReplica.open(tmp_path / "copy.sqlite")
    rows = [packed(f"c{n}", 1 + n % 3, n) for n in range(1200)]  # more than one page
    assert replica.add(rows) == 1200
    got = replica.get([chunk_id for chunk_id, *_ in rows] + ["unknown"])
    assert len(got) == 1200
    assert all(same(got[chunk_id], unpack_passages(meta)) for chunk_id, meta, _, _ in rows)
    chunks = replica.chunks(["c7", "unknown", "c8"])
    assert chunks == {chunk_id: (text, meta) for chunk_id, _, text, meta in rows[7:9]}
    assert replica.missing(["c1", "new", "c2"]) == ["new"]

    assert replica.keep_only(["c1", "c2"]) == 1198
    reopened = PassageReplica.open(tmp_path / "copy.sqlite")
    assert sorted(reopened.get(["c0", "c1", "c2"])) == ["c1", "c2"]


def test_a_damaged_file_is_started_afresh(tmp_path: Path, caplog):
    path = tmp_path / "copy.sqlite"
    path.write_bytes(b"not a database, " * 512)
    with caplog.at_level(logging.WARNING, logger="index.passage_replica"):
        replica = PassageReplica.open(path)
    assert "damaged" in caplog.text
    assert replica.add([packed("c0", 2, 0)]) == 1
    assert list(replica.get(["c0"])) == ["c0"]


def test_a_read_only_folder_holds_no_copy(tmp_path: Path, caplog):
    (tmp_path / "source").mkdir()
    with (
        read_only_view(tmp_path / "source", tmp_path / "view") as view,
        caplog.at_level(logging.WARNING, logger="index.passage_replica"),
    ):
        assert PassageReplica.open(view / "copy.sqlite") is None
    assert "could not keep a passage cache" in caplog.text


def test_a_full_disk_stops_the_fill_and_keeps_what_was_written(tmp_path: Path, caplog):
    with tmpfs(tmp_path / "small", size="4m") as small:
        replica = PassageReplica.open(small / "copy.sqlite")
        big = [packed(f"c{n}", 40, n, dimension=16) for n in range(2000)]  # 5 MB of vectors
        with caplog.at_level(logging.WARNING, logger="index.passage_replica"):
            stored = replica.add(big)
        assert 0 < stored < len(big)
        assert "could not write" in caplog.text
        # Failed once, it answers nothing (the store reads Chroma) and raises nothing.
        assert replica.get(["c0"]) == {}
        with sqlite3.connect(small / "copy.sqlite") as db:
            assert db.execute("SELECT count(*) FROM passages").fetchone()[0] == stored


def _corpus(tmp_path: Path, embedder) -> Corpus:
    return Corpus(
        chroma_connection(tmp_path / "data"),
        "articles",
        embedder,
        ChunkingConfig(max_tokens=64, overlap_tokens=8),
    )


def _chroma_reads(store, monkeypatch) -> list[list[str]]:
    """The chunk ids each read of chunks or packed passages from Chroma asked for."""
    reads: list[list[str]] = []
    for method in ("_packed", "_records"):
        original = getattr(store, method)

        def counting(chunk_ids, original=original):
            reads.append(list(chunk_ids))
            return original(chunk_ids)

        monkeypatch.setattr(store, method, counting)
    return reads


def test_a_reader_reads_passages_locally_and_ranks_as_from_chroma(tmp_path, e5, monkeypatch):
    folder = write_articles(tmp_path / "articles", ARTICLES)
    corpus = _corpus(tmp_path, e5)
    corpus.sync([folder])
    retriever = corpus.retriever(retrieval_config())
    store = retriever._store
    assert store.replica is not None
    reads = _chroma_reads(store, monkeypatch)
    local = retriever.retrieve("What does Avocado distil?", 3)
    assert reads == []

    store.replica = None
    store._passage_cache.clear()
    remote = retriever.retrieve("What does Avocado distil?", 3)
    assert reads  # the same question, its passages read from Chroma
    assert [(c.chunk_id, c.score) for c in local.chunks] == [
        (c.chunk_id, c.score) for c in remote.chunks
    ]
    assert local.chunks == remote.chunks  # text, title, date, path: as Chroma holds them


def test_after_a_reindex_the_copy_holds_exactly_the_live_chunks(tmp_path, e5):
    folder = write_articles(tmp_path / "articles", ARTICLES)
    corpus = _corpus(tmp_path, e5)
    corpus.sync([folder])
    corpus.retriever(retrieval_config())
    (folder / "llama.md").unlink()
    (folder / "vr.md").write_text("Meta is cutting its virtual reality budget.", encoding="utf-8")
    corpus.sync([folder])

    retriever = corpus.retriever(retrieval_config())
    store = retriever._store
    live = sorted(store.live)
    assert store.replica.missing(live) == []
    assert sorted(store.replica.get([*live, *store.replica._held()])) == live


def test_a_large_fill_runs_in_the_background_while_chroma_answers(tmp_path, e5, monkeypatch):
    folder = write_articles(tmp_path / "articles", ARTICLES)
    corpus = _corpus(tmp_path, e5)
    corpus.sync([folder])
    monkeypatch.setattr(passage_replica, "_FILL_NOW", 0)
    retriever = corpus.retriever(retrieval_config())
    replica = retriever._store.replica
    assert retriever.retrieve("What does Avocado distil?", 1).chunks
    assert replica.wait(timeout=60)
    assert replica.missing(retriever._store.live) == []


def test_a_moved_article_is_cited_at_its_new_path_from_the_copy(tmp_path, e5, monkeypatch):
    folder = write_articles(tmp_path / "articles", ARTICLES)
    corpus = _corpus(tmp_path, e5)
    corpus.sync([folder])
    corpus.retriever(retrieval_config())  # fills this host's copy with the old path
    moved = folder.rename(tmp_path / "moved")
    report = corpus.sync([moved])
    assert sorted(report.moved) == ["avocado.md", "llama.md"]
    assert not report.chunks_embedded  # same chunks, new path

    retriever = corpus.retriever(retrieval_config())
    reads = _chroma_reads(retriever._store, monkeypatch)
    (chunk,) = retriever.retrieve("Which team moved after Llama 4?", 1).chunks
    assert reads == []  # read from the copy
    assert Path(chunk.path) == moved / "llama.md"
