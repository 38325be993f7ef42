"""Atomic article versions and what a run may remove: leftovers of killed runs are repaired,
articles outside the given paths or unreadable for now are kept, moved ones are re-pathed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from index.articles import load_articles
from index.chunking import Chunker, ChunkingConfig
from index.corpus import Corpus
from index.passages import passage_records
from index.store import ArticleVersion, ChunkStore
from tests.helpers.chroma import connection as chroma_connection
from tests.helpers.corpora import opened
from tests.helpers.embedders import MemoisingEmbedder
from tests.helpers.settings import retrieval_config

ARTICLES = {
    "avocado.md": "---\ntitle: Avocado\ndate: 2025-12-11\n---\n"
    "Meta's model Avocado is expected next spring. It distils Gemma, gpt-oss and Qwen.",
    "llama.md": "---\ntitle: Llama\n---\nLlama 4 disappointed Silicon Valley. Its team moved.",
    "sub/vr.md": "---\ntitle: VR\n---\nMeta is cutting its virtual reality budget.",
}
CHUNKING = ChunkingConfig(max_tokens=64, overlap_tokens=8)


@pytest.fixture(scope="module")
def embedder(e5) -> MemoisingEmbedder:
    return MemoisingEmbedder(e5)


def _write(folder: Path, articles: dict[str, str]) -> Path:
    for name, text in articles.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return _write(tmp_path / "articles", ARTICLES)


@pytest.fixture
def corpus(tmp_path: Path, embedder) -> Corpus:
    return Corpus(chroma_connection(tmp_path / "data"), "articles", embedder, CHUNKING)


def _state(corpus: Corpus) -> tuple[list, list, dict]:
    """Everything stored, live or not: chunk ids, passage record ids, manifests (hash and
    chunks)."""
    store = corpus.store()
    store.open_for_reading()
    manifests = {a: (m.content_hash, m.chunk_ids) for a, m in store.manifests().items()}
    return sorted(store.chunk_ids()), sorted(store.passage_ids()), manifests


def _clean_build(tmp_path: Path, embedder, folder: Path) -> tuple[list, list, dict]:
    clean = Corpus(chroma_connection(tmp_path / "clean"), "clean", embedder, CHUNKING)
    clean.sync([folder])
    return _state(clean)


def _stray_version(store: ChunkStore, embedder, text: str) -> None:
    """Write an article version's passages and chunks but no manifest: what a run killed
    between writing a version and publishing it leaves."""
    stray = _write(Path(store._connection.data_dir) / "stray", {"x.md": text})
    (article,) = load_articles([stray]).articles
    chunks = Chunker(embedder.count_tokens, embedder.max_tokens, CHUNKING).split(
        article.id, article.text, article.title
    )
    passages = [p for chunk in chunks for p in passage_records(chunk)]
    vectors = embedder.embed_documents([p.text for p in passages])
    dimension = vectors.shape[1]
    store.write_versions(
        [ArticleVersion(article, chunks, np.ones((len(chunks), dimension)), passages, vectors)]
    )
    store.retire([article.id])


def test_leftovers_of_killed_runs_are_removed_and_the_index_equals_a_clean_build(
    corpus, folder, embedder, tmp_path
):
    corpus.sync([folder])
    store = corpus.store()
    store.open_for_writing()
    _stray_version(store, embedder, "An orphan version. Nobody names it.")
    llama = store.manifests()["llama.md"]
    store.retire(["llama.md"])  # its record lost: the article must be redone
    avocado = store.manifests()["avocado.md"]
    store.delete_passages([avocado.chunk_ids[0]])  # passages missing: the article must be redone
    store._passages.upsert(  # passages of no chunk
        ids=["0" * 32], embeddings=[[1.0]], metadatas=[{"article": "gone.md", "spans": ""}]
    )

    plans = []
    report = corpus.sync([folder], on_plan=plans.append)

    [plan] = plans
    assert sorted(a.id for a in plan.added) == ["llama.md"]
    assert [a.id for a in plan.updated] == ["avocado.md"]
    assert plan.orphan_chunks
    assert plan.orphan_passages

    assert report.repaired > 0
    assert set(llama.chunk_ids) <= set(opened(corpus).live_chunk_ids())
    assert _state(corpus) == _clean_build(tmp_path, embedder, folder)


def test_an_update_is_a_new_version_and_the_old_one_goes_once_it_is_published(
    corpus, folder, embedder, tmp_path
):
    corpus.sync([folder])
    old = opened(corpus).manifests()["llama.md"].chunk_ids
    reader = corpus.retriever(retrieval_config(mode="bm25"))
    (folder / "llama.md").write_text("---\ntitle: Llama\n---\nBehemoth was cancelled.", "utf-8")

    corpus.sync([folder])

    new = opened(corpus).manifests()["llama.md"].chunk_ids
    assert not set(old) & set(new), "a new version never overwrites the old one's records"
    assert not set(old) & set(opened(corpus).chunk_ids()), "the old version is gone"
    hits = corpus.retriever(retrieval_config()).retrieve("Llama Behemoth", 5).chunks
    assert all(hit.article_id != "llama.md" or hit.chunk_id in new for hit in hits)
    assert reader._store.live is not None
    assert set(old) <= reader._store.live
    assert _state(corpus) == _clean_build(tmp_path, embedder, folder)


def test_indexing_one_file_touches_no_other_article(corpus, folder):
    corpus.sync([folder])
    (folder / "avocado.md").unlink()  # outside the path given: not this run's business
    report = corpus.sync([folder / "llama.md"])
    assert (report.unchanged, report.removed) == (["llama.md"], [])
    assert set(opened(corpus).manifests()) == set(ARTICLES)


def test_an_unreadable_article_keeps_its_last_good_version_until_its_file_is_gone(corpus, folder):
    corpus.sync([folder])
    (folder / "llama.md").write_bytes(b"\x00\x01\x02\xff" * 64)  # mid-save garbage
    report = corpus.sync([folder])
    assert report.kept == ["llama.md"]
    assert report.removed == []
    hits = (
        corpus.retriever(retrieval_config(mode="bm25")).retrieve("Llama Silicon Valley", 3).chunks
    )
    assert hits[0].article_id == "llama.md"

    (folder / "llama.md").unlink()
    report = corpus.sync([folder])
    assert report.removed == ["llama.md"]
    assert report.kept == []
    assert "llama.md" not in opened(corpus).manifests()


def test_a_moved_folder_is_re_pathed_without_embedding(corpus, folder, tmp_path):
    corpus.sync([folder])
    moved = tmp_path / "moved"
    shutil.move(folder, moved)
    report = corpus.sync([moved])
    assert report.chunks_embedded == 0
    assert sorted(report.moved) == sorted(ARTICLES)
    hit = corpus.retriever(retrieval_config(mode="bm25")).retrieve("Avocado Gemma", 1).chunks[0]
    assert hit.path == str(moved / "avocado.md")
    assert opened(corpus).manifests()["avocado.md"].path == str(moved / "avocado.md")
