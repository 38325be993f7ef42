"""Follow-up questions in a thread: turn one plus its history into a standalone query.

"And when will it launch?" retrieves nothing useful on its own; the thread's earlier questions
say what "it" is. Any `QueryCondenser` can do the rewriting: the one here needs no model and
simply prepends earlier questions, and an LLM-based one can replace it later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Turn:
    """One earlier question of a thread, as asked, and the answer the bot gave."""

    question: str
    answer: str


class QueryCondenser(Protocol):
    """Rewrites a follow-up into a query that can be retrieved without the conversation."""

    def condense(self, history: Sequence[Turn], follow_up: str) -> str:
        """The standalone query for `follow_up`, given the thread's turns, oldest first."""
        ...


class RecentQuestionsCondenser:
    """Prepends the thread's first question (its topic) and the latest one to the follow-up.

    Without a language model nothing resolves "it", but retrieving with the questions that
    named it finds the right article. The history is trimmed from the oldest side so the query
    stays within `max_chars`; the follow-up itself is never cut.
    """

    def __init__(self, max_chars: int) -> None:
        self._max_chars = max_chars

    def condense(self, history: Sequence[Turn], follow_up: str) -> str:
        """`first question  latest question  follow-up`, without repeats, within `max_chars`."""
        earlier = [history[0].question, history[-1].question] if history else []
        parts: list[str] = []
        for question in earlier:
            if question not in parts and question != follow_up:
                parts.append(question)
        context = " ".join(parts)
        room = self._max_chars - len(follow_up) - 1
        if room <= 0 or not context:
            return follow_up
        kept = context[-room:]
        if len(kept) < len(context) and not context[-room - 1].isspace() and " " in kept:
            kept = kept.split(" ", 1)[1]  # drop the word the cut went through
        return f"{kept.strip()} {follow_up}"
