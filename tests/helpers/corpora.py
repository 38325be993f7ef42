"""Small indexed corpora for retrieval tests."""

from __future__ import annotations

import pytest

from index.chunking import ChunkingConfig
from index.corpus import Corpus
from index.embedding import Embedder
from tests.helpers.chroma import connection as chroma_connection


def indexed_corpus(
    tmp_path_factory: pytest.TempPathFactory,
    embedder: Embedder,
    articles: dict[str, str],
    collection: str,
) -> Corpus:
    """`articles` (file name: text) written to a folder and indexed in 64-token chunks."""
    folder = tmp_path_factory.mktemp("articles")
    for name, text in articles.items():
        (folder / name).write_text(text, encoding="utf-8")
    corpus = Corpus(
        chroma_connection(tmp_path_factory.mktemp("data")),
        collection,
        embedder,
        ChunkingConfig(64, 8),
    )
    corpus.sync([folder])
    return corpus
