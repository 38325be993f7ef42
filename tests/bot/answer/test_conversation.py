"""Condensing a thread's follow-up into a standalone retrieval query."""

from __future__ import annotations

from bot.answer.conversation import RecentQuestionsCondenser, Turn


def turns(*questions: str) -> list[Turn]:
    """A thread's history with these questions."""
    return [Turn(question=question, answer="…") for question in questions]


def test_the_first_and_latest_questions_lead_the_follow_up() -> None:
    condenser = RecentQuestionsCondenser(max_chars=1000)

    assert condenser.condense(turns("What is Avocado?"), "When?") == "What is Avocado? When?"
    assert (
        condenser.condense(turns("What is Avocado?", "Who built it?", "Why?"), "When?")
        == "What is Avocado? Why? When?"
    )
    assert condenser.condense(turns("When?", "When?"), "When?") == "When?"
    assert condenser.condense([], "When?") == "When?"


def test_the_history_is_trimmed_from_the_oldest_side_and_the_follow_up_kept_whole() -> None:
    condenser = RecentQuestionsCondenser(max_chars=30)

    query = condenser.condense(turns("a" * 40, "the launch of Avocado?"), "and when?")

    assert query == "launch of Avocado? and when?"
    assert condenser.condense(turns("topic"), "q" * 40) == "q" * 40
