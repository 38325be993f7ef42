"""Turning a question into a cited answer: retrieve passages, then quote the sentences that answer.

This is the answer engine every front end shares (the CLI, Discord); it knows nothing of either.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import asdict, dataclass, field

import numpy as np

from index.embedding import Embedder
from index.retrieval import AbstentionPolicy, Retrieval, Retriever
from index.sentences import sentence_spans
from index.store import StoredChunk

NO_ANSWER = "The indexed articles don't answer this question."
# A sentence joins the answer when it scores within this margin of the best sentence.
_SENTENCE_MARGIN = 0.03
# Sentences are quoted from the top chunks only, with a small penalty per rank.
_QUOTE_CANDIDATE_CHUNKS = 3
_RANK_PENALTY = 0.005


class QuestionError(ValueError):
    """The question cannot be asked as given; the message says why, for the user."""


@dataclass(frozen=True)
class Citation:
    """A numbered source: the chunk an answer sentence was quoted from."""

    n: int
    chunk_id: str
    article: str
    title: str
    date: str | None
    url: str | None
    path: str
    quote: str


@dataclass(frozen=True)
class Answer:
    """An answer with `[n]` markers whose numbers are the citations' `n`."""

    question: str
    text: str
    citations: list[Citation]
    retrieved: list[StoredChunk]
    abstained: bool
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The `--json` shape: question, answer, citations, retrieved chunks, timings."""
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [asdict(citation) for citation in self.citations],
            "retrieved": [
                {
                    "chunk_id": chunk.chunk_id,
                    "article": chunk.article_id,
                    "title": chunk.title,
                    "score": round(chunk.score, 4),
                    "text": chunk.text,
                }
                for chunk in self.retrieved
            ],
            "timings_ms": {name: round(value, 1) for name, value in self.timings_ms.items()},
        }


def clean_question(question: str, max_chars: int) -> str:
    """The question with whitespace collapsed; refuse empty or over-long ones with a reason."""
    text = " ".join(question.split())
    if not text:
        raise QuestionError("The question is empty: type what you want to know.")
    if len(text) > max_chars:
        raise QuestionError(
            f"The question is {len(text)} characters long; the limit is {max_chars}. "
            "Please shorten it."
        )
    return text


@dataclass(frozen=True)
class _Sentence:
    chunk: StoredChunk
    text: str
    score: float


class ExtractiveAnswerer:
    """Answers by quoting the retrieved sentences most similar to the question, each cited.

    When the abstention policy (calibrated per embedding model) finds no passage close enough
    to the question, it says the articles
    do not answer rather than quote noise.
    """

    def __init__(
        self,
        retriever: Retriever,
        embedder: Embedder,
        *,
        top_k: int = 5,
        abstention: AbstentionPolicy | None = None,
        max_sentences: int = 3,
        max_question_chars: int = 1000,
    ) -> None:
        self._retriever = retriever
        self._embedder = embedder
        self._top_k = top_k
        self._abstention = abstention
        self._max_sentences = max_sentences
        self._max_question_chars = max_question_chars

    def answer(self, question: str) -> Answer:
        """Retrieve, decide whether the articles answer, and quote the best sentences."""
        question = clean_question(question, self._max_question_chars)
        return self.compose(self._retriever.retrieve(question, self._top_k))

    def compose(self, retrieval: Retrieval) -> Answer:
        """The answer from passages already retrieved (the top `top_k` of them are used)."""
        chunks = retrieval.chunks[: self._top_k]
        timings = {"embed": retrieval.embed_ms, "search": retrieval.search_ms}
        if not chunks or self._below_threshold(retrieval):
            return Answer(retrieval.query, NO_ANSWER, [], chunks, True, timings)
        started = time.perf_counter()
        sentences = self._best_sentences(chunks, retrieval.query_vector)
        text, citations = _cite(sentences)
        timings["extract"] = (time.perf_counter() - started) * 1000
        return Answer(retrieval.query, text, citations, chunks, False, timings)

    def _below_threshold(self, retrieval: Retrieval) -> bool:
        """Whether even the nearest passage is too far from the question to answer it."""
        return self._abstention is not None and self._abstention.should_abstain(retrieval)

    def _best_sentences(
        self, chunks: list[StoredChunk], query_vector: np.ndarray
    ) -> list[_Sentence]:
        """Score the sentences of the top chunks against the query and keep the close best.

        A sentence's score is its similarity to the question, less a small penalty for each
        rank its chunk sits below the first.
        """
        candidates = [
            (rank, chunk, chunk.text[span.start : span.end])
            for rank, chunk in enumerate(chunks[:_QUOTE_CANDIDATE_CHUNKS])
            for span in sentence_spans(chunk.text)
        ]
        vectors = self._embedder.embed_documents([text for _, _, text in candidates])
        similarities = vectors @ query_vector
        scored = sorted(
            (
                _Sentence(chunk, text, float(similarity) - _RANK_PENALTY * rank)
                for (rank, chunk, text), similarity in zip(candidates, similarities, strict=True)
            ),
            key=lambda sentence: -sentence.score,
        )
        chosen: list[_Sentence] = []
        for sentence in scored:
            if len(chosen) == self._max_sentences:
                break
            if chosen and sentence.score < chosen[0].score - _SENTENCE_MARGIN:
                break
            if not any(_same_text(sentence.text, other.text) for other in chosen):
                chosen.append(sentence)
        return chosen


def _cite(sentences: list[_Sentence]) -> tuple[str, list[Citation]]:
    """Join sentences with `[n]` markers; one citation per chunk, numbered by first use."""
    numbers: dict[str, int] = {}
    quotes: dict[str, list[str]] = {}
    parts = []
    for sentence in sentences:
        chunk_id = sentence.chunk.chunk_id
        n = numbers.setdefault(chunk_id, len(numbers) + 1)
        quotes.setdefault(chunk_id, []).append(sentence.text)
        parts.append(f"{sentence.text} [{n}]")
    chunks = {sentence.chunk.chunk_id: sentence.chunk for sentence in sentences}
    citations = [
        Citation(
            n=n,
            chunk_id=chunk_id,
            article=chunks[chunk_id].article_id,
            title=chunks[chunk_id].title,
            date=chunks[chunk_id].date,
            url=chunks[chunk_id].url,
            path=chunks[chunk_id].path,
            quote=" ".join(quotes[chunk_id]),
        )
        for chunk_id, n in numbers.items()
    ]
    return " ".join(parts), citations


def _same_text(a: str, b: str) -> bool:
    """Whether two sentences say the same, or one contains the other, ignoring width and spaces."""
    a, b = _fold(a), _fold(b)
    return a in b or b in a


def _fold(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).lower().split())
