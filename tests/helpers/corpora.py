"""Small article folders and indexed corpora for tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.chunking import ChunkingConfig
from index.corpus import Corpus
from index.embedding import Embedder
from index.store import ChunkStore
from tests.helpers.chroma import connection as chroma_connection


def write_articles(folder: Path, articles: dict[str, str]) -> Path:
    """Write articles (file name -> text) into a folder, creating it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in articles.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def opened(corpus: Corpus) -> ChunkStore:
    """The corpus's live version, opened for reading."""
    store = corpus.store()
    store.open_for_reading()
    return store


def indexed_corpus(
    tmp_path_factory: pytest.TempPathFactory,
    embedder: Embedder,
    articles: dict[str, str],
    collection: str,
) -> Corpus:
    """`articles` (file name: text) written to a folder and indexed in 64-token chunks."""
    folder = write_articles(tmp_path_factory.mktemp("articles"), articles)
    corpus = Corpus(
        chroma_connection(tmp_path_factory.mktemp("data")),
        collection,
        embedder,
        ChunkingConfig(64, 8),
    )
    corpus.sync([folder])
    return corpus
