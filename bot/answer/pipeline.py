"""The answer pipeline, in its steps: clean the question, condense a follow-up with its thread,
retrieve, abstain when the articles do not answer, then quote or generate, and quote instead
when generating fails. The quoting and generating answerers plug into it; front ends get it
from `bot.answer.engine`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.answer.abstention import NO_ANSWER, AbstentionPolicy, abstains
from bot.answer.conversation import QueryCondenser, Turn
from bot.answer.extractive import Answer, Quoter, TextCallback, clean_question, retrieval_timings
from bot.answer.llm.rewrite import QueryRewriter, articles_language
from index.retrieval import Retrieval, Retriever

if TYPE_CHECKING:
    from bot.answer.llm.answerer import AnswerGenerator, Generation


@dataclass(frozen=True)
class Response:
    """An answer with how it came about: the generation behind it, None for quotes alone."""

    answer: Answer
    generation: Generation | None = None


class AnswerPipeline:
    """Answers questions over one retriever; without a `generator` every answer is quoted."""

    def __init__(
        self,
        retriever: Retriever,
        quoter: Quoter,
        *,
        top_k: int,
        abstention: AbstentionPolicy | None,
        max_question_chars: int,
        condenser: QueryCondenser,
        generator: AnswerGenerator | None = None,
        rewriter: QueryRewriter | None = None,
    ) -> None:
        """`rewriter`: when given, questions are also searched for in the articles' language."""
        self._retriever = retriever
        self._quoter = quoter
        self._top_k = top_k
        self._abstention = abstention
        self._max_question_chars = max_question_chars
        self._condenser = condenser
        self._generator = generator
        self._rewriter = rewriter

    def answer(
        self,
        question: str,
        on_text: TextCallback | None = None,
        *,
        history: Sequence[Turn] = (),
    ) -> Answer:
        """The cited answer; `on_text` sees a generated answer's text as it streams in, and
        `history` holds a thread's earlier turns when `question` follows up on them (the
        history finds the article, the follow-up's own words the answer)."""
        question = clean_question(question, self._max_question_chars)
        query = self._condense(history, question) if history else question
        retrieval = self.retrieve(query)
        focus = question if query != question else None
        return self.respond(retrieval, on_text, focus=focus).answer

    def retrieve(self, query: str) -> Retrieval:
        """The passages for a query, searched for as asked and, with a rewriter, as rewritten
        into the articles' language (no rewrite when it is already in it)."""
        rewrite = None
        if self._rewriter is not None:
            rewrite = self._rewriter.rewrite(query, articles_language(self._retriever))
        return self._retriever.retrieve(query, self._top_k, (rewrite,) if rewrite else ())

    def respond(
        self,
        retrieval: Retrieval,
        on_text: TextCallback | None = None,
        *,
        focus: str | None = None,
    ) -> Response:
        """The answer from passages already retrieved (the top `top_k` of them): abstain, or
        quote them (for `focus`, when given), or generate from them and quote instead when
        that fails, saying why. A fallback quotes for the query: with a language model, the
        condensed follow-up already says what is asked."""
        passages = retrieval.chunks[: self._top_k]
        if self.abstains(retrieval):
            timings = retrieval_timings(retrieval)
            return Response(Answer(retrieval.query, NO_ANSWER, [], passages, True, timings))
        if self._generator is None:
            return Response(self._quoter.quote(retrieval, passages, focus))
        generation = self._generator.generate(retrieval, passages, on_text)
        if generation.answer is not None:
            return Response(generation.answer, generation)
        quoted = self._quoter.quote(retrieval, passages)
        return Response(dataclasses.replace(quoted, notice=generation.fallback), generation)

    def warm_up(self) -> None:
        """Load now what the first question would: the retriever's models and indexes, and
        the quoter's dictionary."""
        self._retriever.warm_up()
        self._quoter.warm_up()

    def abstains(self, retrieval: Retrieval) -> bool:
        """Whether the articles do not answer: the abstention policy of the embedding model."""
        return abstains(retrieval, self._abstention)

    def _condense(self, history: Sequence[Turn], follow_up: str) -> str:
        """The follow-up as a standalone query, checked like a question."""
        return clean_question(
            self._condenser.condense(history, follow_up), self._max_question_chars
        )
