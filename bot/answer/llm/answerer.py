"""Generated answers: retrieve, ask the model with numbered passages, check its citations, and
fall back to the extractive answer (labelled) whenever the model fails or the check does."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bot.answer.extractive import (
    Answer,
    Citation,
    ExtractiveAnswerer,
    TextCallback,
    clean_question,
)
from bot.answer.llm.citations import (
    CitationCheck,
    SentenceCheck,
    check_citations,
    renumber,
    supporting_quote,
)
from bot.answer.llm.client import ChatClient, LLMUnavailableError
from bot.answer.llm.prompts import (
    LEAK_MIN_CHARS,
    AnswerPrompt,
    ModelReply,
    parse_reply,
    visible_text,
)
from index.retrieval import Retrieval, Retriever
from index.sentences import sentence_spans
from index.store import StoredChunk

log = logging.getLogger("citebot.llm")

LLM_UNAVAILABLE = "The language model is unavailable; showing quoted passages instead."
CHECK_FAILED = (
    "The generated answer did not pass the citation check; showing quoted passages instead."
)
MODEL_FOUND_NO_ANSWER = (
    "The language model found no answer in the passages; showing the closest quoted passages "
    "instead."
)


@dataclass(frozen=True)
class Generation:
    """An answer with how it came about: the model's reply (None if it gave none) and the
    citation check's verdicts (None if there was nothing to check)."""

    answer: Answer
    reply: str | None = None
    check: CitationCheck | None = None


class GeneratingAnswerer:
    """Answers with a language model over the retrieved passages; every sentence it keeps is
    checked against the passages it cites, and the extractive answer stands in when needed."""

    def __init__(
        self,
        retriever: Retriever,
        extractive: ExtractiveAnswerer,
        chat: ChatClient,
        *,
        top_k: int,
        max_question_chars: int,
    ) -> None:
        self._retriever = retriever
        self._extractive = extractive
        self._chat = chat
        self._top_k = top_k
        self._max_question_chars = max_question_chars

    def answer(
        self, question: str, on_text: TextCallback | None = None, *, focus: str | None = None
    ) -> Answer:
        """Retrieve and generate; `on_text` sees the answer text as it streams in.

        `focus` is not needed: with a language model, follow-ups are condensed by it into a
        standalone question that already says what is asked."""
        question = clean_question(question, self._max_question_chars)
        return self.generate(self._retriever.retrieve(question, self._top_k), on_text).answer

    def generate(self, retrieval: Retrieval, on_text: TextCallback | None = None) -> Generation:
        """The checked generated answer from passages already retrieved, or the extractive
        one: when the articles do not answer (no model call), or labelled, as a fallback."""
        if self._extractive.abstains(retrieval):
            return Generation(self._extractive.compose(retrieval))
        passages = retrieval.chunks[: self._top_k]
        prompt = AnswerPrompt.build(retrieval.query, passages)
        started = time.perf_counter()
        try:
            reply = self._chat.stream(prompt.messages, _preview(prompt, on_text))
        except LLMUnavailableError as error:
            log.warning("language model unavailable, answering with quotes: %s", error)
            return Generation(self._fallback(retrieval, LLM_UNAVAILABLE))
        generate_ms = (time.perf_counter() - started) * 1000
        parsed = parse_reply(reply)
        if parsed.no_answer:
            return Generation(self._fallback(retrieval, MODEL_FOUND_NO_ANSWER), reply)
        check = CitationCheck(check_citations(parsed.body, passages), prompt.leaks(reply))
        if not check.passes:
            log.info("generated answer rejected by the citation check: %r", parsed.body[:300])
            return Generation(self._fallback(retrieval, CHECK_FAILED), reply, check)
        text, cited = renumber(check.kept)
        citations = _citations(passages, cited, check.kept, parsed, prompt.gloss_passages)
        answer = Answer(
            question=retrieval.query,
            text=text,
            citations=citations,
            retrieved=passages,
            abstained=False,
            timings_ms={
                "embed": retrieval.embed_ms,
                "search": retrieval.search_ms,
                "generate": generate_ms,
            },
            mode="generated",
            notice=_check_notice(check),
            quotes=tuple(
                citation.quote[span.start : span.end]
                for citation in citations
                for span in sentence_spans(citation.quote)
            ),
        )
        return Generation(answer, reply, check)

    def _fallback(self, retrieval: Retrieval, notice: str) -> Answer:
        """The extractive answer, saying why it is shown instead of a generated one."""
        return dataclasses.replace(self._extractive.compose(retrieval), notice=notice)


def _preview(prompt: AnswerPrompt, on_text: TextCallback | None) -> TextCallback:
    """A stream callback passing on what a reader may see of the reply so far: nothing until
    there is enough to judge, and nothing more once it repeats the rules (the check will
    reject it; meanwhile the preview must not show them)."""
    leaked = False

    def show(reply_so_far: str) -> None:
        nonlocal leaked
        text = visible_text(reply_so_far)
        leaked = leaked or prompt.leaks(text)
        judged = len("".join(text.split())) >= LEAK_MIN_CHARS
        if on_text is not None and judged and not leaked:
            on_text(text)

    return show


def _citations(
    passages: Sequence[StoredChunk],
    cited: list[int],
    kept: list[SentenceCheck],
    reply: ModelReply,
    gloss_passages: frozenset[int],
) -> list[Citation]:
    """One citation per cited passage, numbered in order of first use, quoting the passage's
    sentences that state what the answer took from it."""
    citations = []
    for new_number, n in enumerate(cited, start=1):
        chunk = passages[n - 1]
        terms = [term for sentence in kept if n in sentence.cited for term in sentence.terms]
        citations.append(
            Citation(
                n=new_number,
                chunk_id=chunk.chunk_id,
                article=chunk.article_id,
                title=chunk.title,
                date=chunk.date,
                url=chunk.url,
                path=chunk.path,
                quote=supporting_quote(chunk, terms),
                gloss=reply.glosses.get(n) if n in gloss_passages else None,
            )
        )
    return citations


def _check_notice(check: CitationCheck) -> str | None:
    """What the reader should know about the check: sentences removed, names unverified."""
    lines = []
    removed = len(check.sentences) - len(check.kept)
    if removed:
        lines.append(
            f"{removed} generated sentence{'s' if removed > 1 else ''} without support in the "
            "sources removed."
        )
    unverified = list(
        dict.fromkeys(
            name
            for sentence in check.kept
            if sentence.verdict == "unverified"
            for name in sentence.missing
        )
    )
    if unverified:
        lines.append(
            "Not found as written in the cited passages (translations?): "
            + ", ".join(unverified)
            + "."
        )
    return " ".join(lines) or None
