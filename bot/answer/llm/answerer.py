"""Generated answers: ask the model with numbered passages and check its citations; when the
model fails or the check does, say why, so the pipeline (`bot.answer.pipeline`) can quote
instead."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bot.answer.extractive import Answer, Citation, TextCallback, retrieval_timings
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
from index.retrieval import Retrieval
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
    """What the model made of the passages: the checked answer, or None and `fallback`, why
    quotes stand in; with the model's reply (None if it gave none) and the citation check's
    verdicts (None if there was nothing to check)."""

    answer: Answer | None
    fallback: str | None = None
    reply: str | None = None
    check: CitationCheck | None = None


class AnswerGenerator:
    """Answers with a language model over the passages; every sentence it keeps is checked
    against the passages it cites."""

    def __init__(self, chat: ChatClient) -> None:
        self._chat = chat

    def generate(
        self,
        retrieval: Retrieval,
        passages: list[StoredChunk],
        on_text: TextCallback | None = None,
    ) -> Generation:
        """The checked generated answer from the passages (the top of `retrieval`); `on_text`
        sees its text as it streams in."""
        prompt = AnswerPrompt.build(retrieval.query, passages)
        started = time.perf_counter()
        try:
            reply = self._chat.stream(prompt.messages, _preview(prompt, on_text))
        except LLMUnavailableError as error:
            log.warning("language model unavailable, answering with quotes: %s", error)
            return Generation(None, LLM_UNAVAILABLE)
        generate_ms = (time.perf_counter() - started) * 1000
        parsed = parse_reply(reply)
        if parsed.no_answer:
            return Generation(None, MODEL_FOUND_NO_ANSWER, reply)
        check = CitationCheck(check_citations(parsed.body, passages), prompt.leaks(reply))
        if not check.passes:
            log.info("generated answer rejected by the citation check: %r", parsed.body[:300])
            return Generation(None, CHECK_FAILED, reply, check)
        text, cited = renumber(check.kept)
        citations = _citations(passages, cited, check.kept, parsed, prompt.gloss_passages)
        answer = Answer(
            question=retrieval.query,
            text=text,
            citations=citations,
            retrieved=passages,
            abstained=False,
            timings_ms={**retrieval_timings(retrieval), "generate": generate_ms},
            mode="generated",
            notice=_check_notice(check),
            quotes=tuple(
                citation.quote[span.start : span.end]
                for citation in citations
                for span in sentence_spans(citation.quote)
            ),
        )
        return Generation(answer, reply=reply, check=check)


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
