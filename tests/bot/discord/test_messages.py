"""Payload building: every message within Discord's limits, citations never cut apart."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bot.answer.engine import IndexStatus
from bot.answer.extractive import Answer, Citation
from bot.discord.channels import Scope
from bot.discord.messages import (
    EMBED_DESCRIPTION_LIMIT,
    Payload,
    ScopeStatus,
    answer_payloads,
    neutralise_mentions,
    plan_text,
    search_payloads,
    sources_payloads,
    split_answer_text,
    status_embed,
)
from index.articles import Article
from index.indexer import IndexPlan
from index.store import StoredChunk
from tests.helpers.discord_limits import message_problems


def as_body(payload: Payload) -> dict[str, Any]:
    """The JSON body discord.py would send for a payload."""
    return {"content": payload.content, "embeds": [e.to_dict() for e in payload.embeds]}


def assert_within_limits(payloads: list[Payload]) -> None:
    """Every payload has something to show and breaks none of Discord's limits."""
    assert payloads
    for payload in payloads:
        assert payload.content or payload.embeds
        assert message_problems(as_body(payload)) == []


def citation(n: int, quote: str) -> Citation:
    """A citation with a long title; odd ones have a web URL, even ones a value that is not."""
    return Citation(
        n=n,
        chunk_id=f"long.txt#{n}",
        article="long.txt",
        title=f"Article number {n} " + "with a very long headline " * 12,
        date="2025-12-11",
        url=f"https://example.com/{n}" if n % 2 else "not a url",
        path="/srv/articles/long.txt",
        quote=quote,
    )


@pytest.fixture
def long_answer() -> Answer:
    """30 citations, each sentence ~350 characters, quotes of 1,000 to 6,000 characters."""
    citations = [
        citation(n, f"Quote {n} begins. " + "細節" * (500 * (1 + n % 6)) + f" Quote {n} ends.")
        for n in range(1, 31)
    ]
    sentences = [f"Sentence {n} says " + "something long " * 22 + f"[{n}]" for n in range(1, 31)]
    return Answer("Why?", " ".join(sentences), citations, [], False)


def test_a_long_answer_splits_into_valid_messages_without_cutting_a_citation(
    long_answer: Answer,
) -> None:
    payloads = answer_payloads(long_answer)

    assert_within_limits(payloads)
    contents = [p.content for p in payloads if p.content]
    assert len(contents) > 1
    assert all(re.search(r"\[\d+\]$", content) for content in contents)  # cut after a marker
    assert " ".join(contents) == long_answer.text
    titles = [embed.title or "" for p in payloads for embed in p.embeds]
    assert [int(re.match(r"\[(\d+)\]", t).group(1)) for t in titles] == list(range(1, 31))  # type: ignore[union-attr]
    assert len(payloads) > len(contents)  # sources overflow into messages of their own


def test_sources_show_whole_quotes_and_shorten_only_an_over_long_one(
    long_answer: Answer,
) -> None:
    payloads = sources_payloads(long_answer.citations)

    assert_within_limits(payloads)
    descriptions = [embed.description or "" for p in payloads for embed in p.embeds]
    assert len(descriptions) == 30
    for source, description in zip(long_answer.citations, descriptions, strict=True):
        if len(source.quote) + 2 <= EMBED_DESCRIPTION_LIMIT:
            assert description == f"“{source.quote}”"
        else:
            assert description.endswith("…”")
            assert len(description) == EMBED_DESCRIPTION_LIMIT
    urls = [embed.url for p in payloads for embed in p.embeds]
    assert urls[:2] == ["https://example.com/1", None]  # only web URLs become links


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ("https://news.example.com/meta-avocado?ref=1#top", True),
        ("http://10.0.0.7:8080/articles/1", True),
        ("https://例子.台灣/新聞", True),
        ("http://intranet/wiki/avocado", False),
        ("http://", False),
        ("https://news.example.com/a\nb", False),
        ("https://news.example.com/a b", False),
        ("https://news.example.com:port/", False),
        ("ftp://news.example.com/a", False),
        ("javascript:alert(1)", False),
        ("https://news.example.com/" + "a" * 2048, False),
    ],
)
def test_only_a_url_discord_accepts_becomes_the_source_link(url: str, linked: bool) -> None:
    source = Citation(1, "a.md#0", "a.md", "Avocado", "2025-12-11", url, "/a.md", "閉源。")
    answer = Answer("Is it open?", "閉源。 [1]", [source], [], False, quotes=("閉源。",))
    payloads = answer_payloads(answer)

    assert_within_limits(payloads)  # a malformed URL would get the whole answer rejected
    assert [embed.url for p in payloads for embed in p.embeds] == [url if linked else None]


def test_a_sentence_longer_than_a_message_is_wrapped_with_its_marker_at_the_end() -> None:
    text = "短" * 4500 + " [1] Then a short one. [2]"

    contents = split_answer_text(text)

    assert len(contents) == 3
    assert all(len(content) <= 2000 for content in contents)
    assert "".join(contents).replace(" ", "") == text.replace(" ", "")
    assert [content.count("[1]") for content in contents] == [0, 0, 1]
    assert "短 [1] Then a short one. [2]" in contents[-1]


def test_mentions_are_neutralised_but_text_reads_the_same() -> None:
    text = "Ping @everyone, @here, <@123>, <@!45> and <@&6>; mail a@b.c; see <#7>."

    neutral = neutralise_mentions(text)

    assert neutral.replace("\u200b", "") == text
    for mention in ("@everyone", "@here", "<@123>", "<@!45>", "<@&6>"):
        assert mention not in neutral
    assert "a@b.c" in neutral


# A masked link Discord would render: "[text](url)" with no backslash before the bracket.
RENDERED_LINK = re.compile(r"(?<!\\)\[[^\]]*\]\(")


def test_article_markdown_is_shown_as_written_and_cannot_hide_a_link() -> None:
    quote = "Avocado ships **next spring**.\n# Breaking\n[Read the memo](https://evil.example/x)"
    source = Citation(
        1,
        "a.md#0",
        "a.md",
        "*Meta*\n# Big [news](https://evil.example)",
        None,
        None,
        "/a.md",
        quote,
    )
    answer = Answer("When?", f"{quote} [1]", [source], [], False, quotes=(quote,))

    payloads = answer_payloads(answer)

    content = payloads[0].content or ""
    assert not RENDERED_LINK.search(content)
    assert not re.search(r"^#", content, re.MULTILINE)  # no heading starts a line
    assert r"\*\*next spring\*\*" in content  # shown with its asterisks, not bold
    assert content.splitlines()[:2] == [  # the quote and the source line stay one line each
        r"> Avocado ships \*\*next spring\*\*. # Breaking"
        r" \[Read the memo](https://evil.example/x) [1]",
        r"— *\*Meta\* # Big \[news](https://evil.example)*",
    ]
    embed = payloads[0].embeds[0]
    assert not RENDERED_LINK.search((embed.description or "") + (embed.title or ""))


def test_a_generated_answer_keeps_its_formatting_but_shows_where_a_link_leads() -> None:
    text = 'Avocado is **closed** [1]. [Details](<https://evil.example/p> "x") and [2](x).'
    source = Citation(1, "a.md#0", "a.md", "Meta", None, None, "/a.md", "閉源。")

    payloads = answer_payloads(Answer("Open?", text, [source], [], False, mode="generated"))

    content = payloads[0].content or ""
    assert content.startswith("Avocado is **closed** [1]. Details (https://evil.example/p)")
    assert not RENDERED_LINK.search(content)


def test_search_results_and_status_stay_within_limits() -> None:
    chunk = StoredChunk(
        "a.txt#0", "a.txt", "長" * 5000, "T" * 300, None, None, "a.txt", 0, 0, 5000, 0.5
    )
    assert_within_limits(search_payloads("q" * 990, [chunk] * 10))
    scopes = [
        ScopeStatus(
            Scope(Path("/srv") / ("x" * 300), f"c{n}"),
            [n] * 60,
            n == 0,
            IndexStatus(f"c{n}", "e5", "n" * 2000, articles=5, chunks=9, generation=1),
            None,
        )
        for n in range(40)
    ]
    long_model = "generated by " + "vendor/model-" * 150  # LLM_MODEL is the user's to set
    embed = status_embed(version="0.1.0", answer_mode=long_model, retrieval="hybrid", scopes=scopes)
    assert_within_limits([Payload(embeds=(embed,))])
    assert embed.fields[-1].value.startswith("and ")  # type: ignore[union-attr]


def test_plan_lists_a_few_names_per_change() -> None:
    added = [
        Article(
            id=f"new-{n}.txt",
            path=Path(f"new-{n}.txt"),
            title="",
            text="",
            date=None,
            url=None,
            source=None,
            content_hash="",
        )
        for n in range(8)
    ]
    plan = IndexPlan(added=added, updated=[], removed=["@everyone.txt"], unchanged=["a", "b"])

    text = plan_text(Scope(Path("articles"), "articles"), plan)

    assert "• 8 added: `new-0.txt`" in text
    assert "and 3 more" in text
    assert "• 1 removed: `@\u200beveryone.txt`" in text
    assert "• 0 changed" in text
    assert "• 2 unchanged" in text


def test_a_quoted_answer_leads_with_the_answering_sentence_and_its_source():
    first = Citation(
        1, "c1", "a.txt", "Avocado 新模型", "2025-12-11", None, "/a.txt", "明年春季亮相。"
    )
    second = Citation(2, "c2", "b.txt", "Meta 策略", None, None, "/b.txt", "以閉源模式推出。")
    answer = Answer(
        "When?",
        "明年春季亮相。 [1] 以閉源模式推出。 [2]",
        [first, second],
        [],
        False,
        quotes=("明年春季亮相。", "以閉源模式推出。"),
    )
    [payload] = answer_payloads(answer)
    lines = payload.content.splitlines()
    assert lines[0] == "> 明年春季亮相。 [1]"
    assert lines[1] == "— *Avocado 新模型*, 2025-12-11"
    assert lines[-1] == "> 以閉源模式推出。 [2]"
    assert_within_limits([payload])
