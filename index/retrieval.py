"""Finding the chunks that answer a question: dense vectors, BM25, or both fused."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

from index.background import background_scores
from index.chunking import passage_with_title
from index.dictionary import chinese_words
from index.embedding import Embedder
from index.lexical import LexicalIndex, lexical_tokens, window_overlap
from index.records import ChunkPassages
from index.reranking import Reranker
from index.sentences import sentences_excerpt
from index.store import ChunkStore, StoredChunk
from index.text import unwrap, writes_chinese

RetrievalMode = Literal["dense", "bm25", "hybrid"]
# Each retriever's top this-many chunks feed the fusion.
_FUSION_CANDIDATES = 50
# Chunks found by their own vectors per dense candidate kept: their passages then rank them.
_CHUNKS_PER_CANDIDATE = 2
# BM25's share of the fused score when the corpus knows every word of the query.
_LEXICAL_WEIGHT = 0.5
# A word the corpus writes only in translation (`Retriever.translations`) counts this much of
# one it writes as the query does: a translation may not be the sense the articles use.
_TRANSLATED_WORD_WEIGHT = 0.5
# The best this-many fused chunks are diversified (and reranked) before the top k are kept.
RERANK_POOL = 30
# Questions are embedded here, one at a time, while the asking thread searches BM25.
_QUERY_EMBEDDING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="citebot-query")
_T = TypeVar("_T")


@dataclass(frozen=True)
class RetrievalConfig:
    """How a retriever ranks: the mode, how many fused chunks the cross-encoder rescores (when
    there is one), and the per-article diversity penalty (`spread_over_articles`)."""

    mode: RetrievalMode
    rerank_candidates: int
    article_diversity: float


@dataclass(frozen=True)
class Retrieval:
    """The chunks found for a query, best first, and what finding them cost.

    The evidence abstention is decided on (in `bot.answer.abstention`): `dense_scores`, the
    dense scores of the nearest chunks (up to 50, best first; empty without dense retrieval),
    `background_scores`, those of unrelated passages, `same_script`, whether query and best
    chunk are both Chinese or both not, and `lexical_overlap`, the largest share of the
    query's words three consecutive sentences of the best chunk contain. `aliases` are the
    other-script spellings of the query's names that BM25 searched for too (`index.aliases`),
    `rewrites` the other wordings of the query searched for alongside it (its rewrite in the
    articles' language).
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
    rewrites: tuple[str, ...] = ()


class Retriever:
    """Dense (multilingual embeddings: works across languages), BM25 (exact names and terms),
    or both fused; then optionally reranked by a cross-encoder, and spread over articles."""

    def __init__(
        self,
        embedder: Embedder,
        store: ChunkStore,
        lexical: LexicalIndex,
        config: RetrievalConfig,
        *,
        reranker: Reranker | None = None,
    ) -> None:
        self._embedder = embedder
        self._store = store
        self._lexical = lexical
        self.mode = config.mode
        self.reranker = reranker
        self._rerank_candidates = config.rerank_candidates
        self._article_diversity = config.article_diversity

    @property
    def embedder_identity(self) -> str:
        return self._embedder.identity

    def query_vector(self, text: str) -> np.ndarray:
        """The embedding of a question, as retrieval computes it."""
        return self._embedder.embed_queries([text])[0]

    def retrieve(self, query: str, k: int, rewrites: Sequence[str] = ()) -> Retrieval:
        """The `k` best chunks for the query, also searched for as worded in `rewrites`.

        Dense: each chunk keeps its best score over the wordings. BM25: the rewrites' words
        join the query's, as its aliases do, weighted by the best-covered wording. The
        abstention evidence is that of the wording whose nearest passage scores highest, so a
        question rewritten into the articles' language (same-language text scores higher) is
        judged as a question asked in it, by the rule calibrated for that; a rewrite is made
        from the question alone, never from the articles, so it can match them no better than
        a reader asking in their language. The query's own vector stays `query_vector`.
        """
        started = time.perf_counter()
        wordings = [query, *dict.fromkeys(text for text in rewrites if text != query)]
        # The model runs in C without the GIL: BM25, and reading its finds' passages, go on
        # meanwhile, on the other core when it is free.
        embedding = _QUERY_EMBEDDING.submit(_timed, self._embedder.embed_queries, wordings)
        candidates = max(k, _FUSION_CANDIDATES)
        aliases = tuple(self.aliases(query)) if self.mode != "dense" else ()
        translated, translated_share = (
            ((), 0.0) if self.mode == "dense" else self.translations(query)
        )
        lexical_wordings = [" ".join([query, *aliases]), *wordings[1:]]
        searched_for = " ".join([*lexical_wordings, *translated])
        lexical = self._lexical.search(searched_for, candidates) if self.mode != "dense" else []
        # BM25's finds are scored by their passages too: a chunk whose vector (a mean) hides
        # the one sentence asked about is still ranked by that sentence.
        also = (
            self._store.passages_of([chunk_id for chunk_id, _ in lexical])
            if self.mode == "hybrid"
            else {}
        )
        vectors, embed_seconds = embedding.result()
        embedded = started + embed_seconds
        per_wording = (
            [self._dense(v, candidates, also) for v in vectors] if self.mode != "bm25" else []
        )
        dense = _best_of(per_wording)[:candidates]
        if self.mode == "dense":
            ranked = dense
        elif self.mode == "bm25":
            ranked = lexical
        else:
            coverage = max(self._lexical.coverage(text) for text in lexical_wordings)
            coverage = min(1.0, coverage + _TRANSLATED_WORD_WEIGHT * translated_share)
            ranked = fuse(dense, lexical, _LEXICAL_WEIGHT * coverage)
        pool = self._chunks(ranked[: max(k, RERANK_POOL)])
        if self.reranker is not None and pool:
            reranked = self._rerank(query, pool[: self._rerank_candidates])
            pool = reranked + pool[self._rerank_candidates :]
        chunks = spread_over_articles(pool, self._article_diversity)[:k]
        searched = time.perf_counter()
        # The abstention evidence: the wording whose nearest passage scores highest.
        best = max(
            range(len(wordings)),
            key=lambda n: per_wording[n][0][1] if per_wording and per_wording[n] else -np.inf,
        )
        evidence, evidence_dense = wordings[best], per_wording[best] if per_wording else []
        return Retrieval(
            query=query,
            query_vector=vectors[0],
            chunks=chunks,
            aliases=aliases,
            rewrites=tuple(wordings[1:]),
            dense_scores=[score for _, score in evidence_dense],
            background_scores=(
                background_scores(self._embedder, vectors[best]) if evidence_dense else []
            ),
            same_script=bool(chunks) and writes_chinese(evidence) == writes_chinese(chunks[0].text),
            lexical_overlap=(
                window_overlap(evidence, chunks[0].title, chunks[0].text) if chunks else 0.0
            ),
            embed_ms=(embedded - started) * 1000,
            search_ms=(searched - embedded) * 1000,
            similarities=dict(dense),
        )

    @property
    def articles_write_chinese(self) -> bool:
        """Whether most of this corpus's chunks write Chinese (`index.text`), read off them
        with the BM25 index, once per index run."""
        return self._lexical.writes_chinese

    def warm_up(self) -> None:
        """Load now what the first question would (the query model, the store's search path, the
        background vectors, the reranker): a bot pays it at start, not while a burst of
        questions waits on a worker thread that holds the GIL. An embedder with an engine it
        loads only when asked to (`OnnxEmbedder.warm_up`) loads it too."""
        embedder_warm_up = getattr(self._embedder, "warm_up", None)
        if embedder_warm_up is not None:
            embedder_warm_up()
        self.retrieve("warm-up", 1)

    def aliases(self, query: str) -> list[str]:
        """Other-script spellings of the query's names that the articles write (汪滔 for
        "Alexandr Wang"), from the alias table built with the BM25 index; names the articles
        already write as the query does add nothing."""
        known = [token for token in lexical_tokens(query) if self._lexical.coverage(token) == 1.0]
        return self._lexical.aliases.expansions(query, known)

    def translations(self, query: str) -> tuple[tuple[str, ...], float]:
        """The Chinese words the articles write for the query's English words, through the
        dictionary (`index.dictionary.chinese_words`: "general manager" -> 总经理, "metro" ->
        轨道交通), which BM25 searches for too, and the share of those English words that
        have one.

        Across languages BM25 otherwise matches only names and numbers, and the embeddings
        alone rank the chunks. On xquad-en-zh-dev hit@1 0.868 -> 0.889, MRR@10 0.920 -> 0.933
        (translated words counting half, `_TRANSLATED_WORD_WEIGHT`; 0.869 / 0.921 at full).
        """
        words = [
            token
            for token in dict.fromkeys(lexical_tokens(query))
            if token.isascii() and token.isalpha()
        ]
        found = [
            [word for word in chinese_words(english) if self._lexical.coverage(word) == 1.0]
            for english in words
        ]
        written = tuple(word for words_of in found for word in words_of)
        return written, (sum(map(bool, found)) / len(words) if words else 0.0)

    def spellings(self, query: str) -> dict[str, list[str]]:
        """Each of the query's names (folded) -> its other-script spellings in the alias table,
        also for names the articles write as the query does: a sentence writing 汪滔 names
        Alexandr Wang even where another one writes both (what quoting needs; `aliases` is
        what search needs)."""
        return self._lexical.aliases.spellings(query)

    def _dense(
        self, vector: np.ndarray, n: int, also: dict[str, ChunkPassages]
    ) -> list[tuple[str, float]]:
        """The `n` best chunks by their passages: the mean of the chunk's best sentence's and best
        two-sentence window's cosine similarity.

        A question usually asks about one sentence, which a chunk's vector dilutes; the window
        adds the neighbour that says what "it" is. Measured against chunk vectors (plus best
        sentence) on xquad-en-zh-dev, English questions over Chinese: MRR@10 0.869 -> 0.901.
        The store searches chunk vectors (one per chunk, not one per passage: a corpus of 100k
        chunks holds 100k searched vectors, not 2M), and the passages of the best
        `_CHUNKS_PER_CANDIDATE * n` found, and of the chunks in `also` (BM25's, passages read
        already), rank them.
        On drcd-dev's 965 chunks (first 1,500 questions), MRR@10 with every chunk ranked by its
        passages 0.983; chunk vectors' best 100 0.980; with BM25's best 100 as well 0.982.
        """
        found = self._store.search_chunks(vector, _CHUNKS_PER_CANDIDATE * n)
        passages = also | self._store.passages_of(
            [chunk_id for chunk_id, _ in found if chunk_id not in also]
        )
        scored = {
            chunk_id: (
                _best_similarity(own.sentence_vectors, vector)
                + _best_similarity(own.window_vectors, vector)
            )
            / 2
            for chunk_id, own in passages.items()
        }
        return _best_first(scored)[:n]

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

    def matching_passages(self, retrieval: Retrieval) -> dict[str, str]:
        """Each found chunk's two adjacent sentences nearest the query (its best stored
        window), on one line: what a list of search results shows, rather than the chunk's
        opening lines, which may be about something else. A chunk stored without its
        sentences shows its whole text."""
        stored = self._store.passages_of([chunk.chunk_id for chunk in retrieval.chunks])
        shown = {}
        for chunk in retrieval.chunks:
            own = stored.get(chunk.chunk_id)
            if own is None or not len(own.window_vectors):
                shown[chunk.chunk_id] = unwrap(chunk.text.strip())
                continue
            best = int(np.argmax(own.window_vectors @ retrieval.query_vector))
            pair = own.sentences(chunk.text)[best : best + 2]
            shown[chunk.chunk_id] = sentences_excerpt(chunk.text, pair)
        return shown

    def sentences(self, chunks: Sequence[StoredChunk]) -> list[SentenceVectors]:
        """The stored sentences of these chunks, in order, each with its vector and those of
        the windows (adjacent pairs) that hold it."""
        passages = self._store.passages_of([chunk.chunk_id for chunk in chunks])
        found = []
        for chunk in chunks:
            own = passages.get(chunk.chunk_id)
            if own is None:
                continue
            windows = own.window_vectors
            for n, (sentence, vector) in enumerate(
                zip(own.sentences(chunk.text), own.sentence_vectors, strict=True)
            ):
                # Window n pairs sentences n and n + 1; a one-sentence chunk's is itself.
                holding = windows[max(n - 1, 0) : min(n + 1, len(windows))]
                found.append(SentenceVectors(chunk.chunk_id, sentence, vector, holding))
        return found


@dataclass(frozen=True)
class SentenceVectors:
    """A stored sentence of a chunk: its vector, and those of the windows that hold it."""

    chunk_id: str
    text: str
    vector: np.ndarray
    windows: np.ndarray


def _timed(call: Callable[[_T], np.ndarray], argument: _T) -> tuple[np.ndarray, float]:
    """What `call(argument)` returns, and the seconds it took."""
    started = time.perf_counter()
    result = call(argument)
    return result, time.perf_counter() - started


def _best_similarity(vectors: np.ndarray, query: np.ndarray) -> float:
    """The highest cosine similarity of unit vectors to a unit query (-1 when there are none)."""
    return float((vectors @ query).max()) if len(vectors) else -1.0


def _best_of(rankings: list[list[tuple[str, float]]]) -> list[tuple[str, float]]:
    """Every chunk of these rankings with its best score among them, best first."""
    best: dict[str, float] = {}
    for ranking in rankings:
        for chunk_id, score in ranking:
            best[chunk_id] = max(score, best.get(chunk_id, score))
    return sorted(best.items(), key=lambda item: -item[1])


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
    return _best_first(fused)


def _best_first(scores: dict[str, float]) -> list[tuple[str, float]]:
    """(chunk id, score) best first; equal scores in chunk-id order, so a ranking does not
    depend on the order the store or a set returned the chunks in."""
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


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


def _z_scores(scores: dict[str, float]) -> dict[str, float]:
    """Scores standardised to mean 0 and deviation 1, so cosine and BM25 scales mix."""
    if not scores:
        return {}
    values = np.array(list(scores.values()))
    mean, spread = float(values.mean()), float(values.std()) or 1.0
    return {key: (value - mean) / spread for key, value in scores.items()}
