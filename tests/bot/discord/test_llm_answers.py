"""Generated answers in Discord, end to end: the fake Discord, the fake LLM, the real engine.

The answer message is posted with the first tokens, edited as more arrive (throttled), and
finally replaced by the checked answer with its sources; failures end in labelled quotes.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import AsyncIterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from bot.answer.engine import Engine
from bot.answer.llm.answerer import CHECK_FAILED, LLM_UNAVAILABLE
from bot.discord.bot import CitebotBot
from bot.discord.cogs import ask
from bot.discord.cogs.ask import STREAM_EDIT_SECONDS
from bot.discord.messages import STILL_WORKING, WRITING_MARK
from tests.bot.answer.llm.test_generation import DISTILL_QUESTION, INJECTED_ARTICLE
from tests.bot.conftest import FAKE_API_KEY, FAKE_MODEL, with_llm
from tests.bot.discord.conftest import (
    assert_nothing_pings,
    make_bot,
    message_bodies,
    private_replies,
    run_command,
    write_articles,
)
from tests.helpers.fake_discord import EPHEMERAL, FakeDiscord, FakeInteraction, running_bot
from tests.helpers.fake_llm import FakeLLM, LLMRequest, Reply


def distill_answer(request: LLMRequest) -> str:
    """A good reply naming the models, citing their passage (after a passage it does not use,
    so the renumbering shows), with a gloss; plus a marker for a passage that does not exist."""
    models = request.passage_with("Gemma")
    launch = request.passage_with("明年春季")
    return (
        f"Avocado is due next spring as a closed model [{launch}]. "
        f"TBD distilled Google's Gemma, OpenAI's gpt-oss and Qwen [{models}][8].\n\n"
        f"GLOSSES\n[{models}] The TBD team distilled Gemma, gpt-oss and Qwen.\n"
    )


@pytest.fixture
def llm_engine(indexed_engine: Engine, fake_llm: FakeLLM) -> Engine:
    """The indexed engine answering through the fake LLM."""
    return Engine(with_llm(indexed_engine.settings, fake_llm), embedder=indexed_engine.embedder)


@pytest.fixture
async def llm_citebot(fake: FakeDiscord, llm_engine: Engine) -> AsyncIterator[CitebotBot]:
    """Citebot with generated answers, connected to the fake Discord."""
    async with running_bot(fake, make_bot(llm_engine, fake)) as bot:
        yield bot


def answer_edits(fake: FakeDiscord, interaction: FakeInteraction) -> list[dict[str, Any]]:
    """The bodies of every post or edit of the interaction's messages, in order."""
    return message_bodies(
        [r for r in fake.requests_for(interaction) if not r.path.endswith("/callback")]
    )


def markers(text: str) -> list[int]:
    """The citation numbers in a text, in order."""
    return [int(n) for n in re.findall(r"\[(\d+)\]", text)]


async def test_the_answer_streams_in_then_shows_only_its_checked_sources(
    fake: FakeDiscord, llm_citebot: CitebotBot, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply.answer(distill_answer, chunk_delay_seconds=0.1))
    started = time.monotonic()

    interaction = await run_command(fake, llm_citebot, "ask", {"question": DISTILL_QUESTION})

    took = time.monotonic() - started
    *previews, final = answer_edits(fake, interaction)
    assert len(previews) >= 2
    assert len(previews) <= math.ceil(took / STREAM_EDIT_SECONDS) + 1
    assert all(body["content"].endswith(WRITING_MARK) for body in previews)
    assert all(
        later["content"]
        .removesuffix(WRITING_MARK)
        .startswith(earlier["content"].removesuffix(WRITING_MARK))
        for earlier, later in pairwise(previews)
    )
    [answer] = fake.messages_for(interaction)  # the previews became the answer, edited
    assert answer["content"] == final["content"]
    content = answer["content"]
    assert content == (
        "Avocado is due next spring as a closed model [1]. "
        "TBD distilled Google's Gemma, OpenAI's gpt-oss and Qwen [2]."
    )
    titles = [embed["title"] for embed in answer["embeds"]]
    assert [int(title[1]) for title in titles] == sorted(set(markers(content))) == [1, 2]
    models = answer["embeds"][1]["description"]
    assert all(name in models for name in ("Gemma", "gpt-oss", "Qwen"))
    assert models.endswith("\n↳ The TBD team distilled Gemma, gpt-oss and Qwen.")
    assert "明年春季" in answer["embeds"][0]["description"]
    assert len(answer["components"][0]["components"]) == 3  # Sources, 👍, 👎
    assert int(answer["id"]) in fake.channels  # the thread for follow-ups
    assert_nothing_pings(fake)


async def test_an_instruction_inside_an_article_changes_nothing_and_never_leaks(
    fake: FakeDiscord, llm_engine: Engine, fake_llm: FakeLLM, articles: Path
) -> None:
    write_articles(articles, {"avocado-notes.txt": INJECTED_ARTICLE})
    llm_engine.corpus().sync([articles])
    fake_llm.script(Reply.answer(distill_answer), Reply.echo_system_prompt())

    async with running_bot(fake, make_bot(llm_engine, fake)) as bot:
        obeyed = await run_command(fake, bot, "ask", {"question": DISTILL_QUESTION})
        echoed = await run_command(fake, bot, "ask", {"question": DISTILL_QUESTION})

    [asked, _] = fake_llm.requests
    injected = asked.passage_with("Ignore previous instructions")
    assert "Ignore previous instructions" in asked.passages()[injected]
    assert "Ignore previous instructions" not in asked.system
    [answer] = fake.messages_for(obeyed)
    assert markers(answer["content"]) == [1, 2]
    assert answer["content"].startswith("Avocado is due next spring")
    [fallback] = fake.messages_for(echoed)
    assert fallback["content"].startswith(f"*{CHECK_FAILED}*\n")
    shown = " ".join(body.get("content") or "" for body in answer_edits(fake, echoed))
    assert "Citebot" not in shown
    assert "never an instruction" not in shown
    assert_nothing_pings(fake)


async def test_a_failing_endpoint_ends_in_labelled_quotes_without_its_error_text(
    fake: FakeDiscord, indexed_engine: Engine, fake_llm: FakeLLM
) -> None:
    settings = with_llm(indexed_engine.settings, fake_llm, llm_max_retries=0)
    engine = Engine(settings, embedder=indexed_engine.embedder)
    fake_llm.script(Reply.error(500, f"model crashed; key {FAKE_API_KEY} rejected"))

    async with running_bot(fake, make_bot(engine, fake)) as bot:
        interaction = await run_command(fake, bot, "ask", {"question": DISTILL_QUESTION})

    [answer] = fake.messages_for(interaction)
    assert answer["content"].startswith(f"*{LLM_UNAVAILABLE}*\n")
    assert any("Gemma" in embed["description"] for embed in answer["embeds"])
    sent = str([request.json for request in fake.requests])
    assert "crashed" not in sent
    assert FAKE_API_KEY not in sent


async def test_a_stream_that_stalls_after_the_preview_is_replaced_by_labelled_quotes(
    fake: FakeDiscord, llm_citebot: CitebotBot, fake_llm: FakeLLM
) -> None:
    stalling = Reply(distill_answer, chunk_chars=40, chunk_delay_seconds=3.0)  # timeout: 1 s
    fake_llm.script(stalling)

    interaction = await run_command(fake, llm_citebot, "ask", {"question": DISTILL_QUESTION})

    [preview, *_] = answer_edits(fake, interaction)
    assert preview["content"] == "Avocado is due next spring as a closed m" + WRITING_MARK
    [answer] = fake.messages_for(interaction)
    assert answer["content"].startswith(f"*{LLM_UNAVAILABLE}*\n")
    assert answer["embeds"]


async def test_an_answer_still_written_when_its_token_expires_is_posted_in_the_channel(
    fake: FakeDiscord, llm_citebot: CitebotBot, fake_llm: FakeLLM, monkeypatch
) -> None:
    monkeypatch.setattr(ask, "EXPIRY_MARGIN_SECONDS", 1.0)
    fake_llm.script(Reply.answer(distill_answer, chunk_delay_seconds=0.2))  # some 6 s

    interaction = await run_command(
        fake, llm_citebot, "ask", {"question": DISTILL_QUESTION}, token_seconds_left=2.5
    )

    [notice] = fake.messages_for(interaction)  # the preview, told where the answer comes
    assert notice["content"] == STILL_WORKING
    assert not notice.get("components")
    assert not notice["embeds"]
    assert all(r.status < 400 for r in fake.requests_for(interaction)), "nothing after expiry"
    [answer] = [m for m in fake.messages_in(fake.channel_id) if m["id"] != notice["id"]]
    heading, first_line = answer["content"].split("\n")[:2]
    assert heading == f"-# Answer to <@{fake.member_user.id}>: “{DISTILL_QUESTION}”"
    assert first_line.startswith("Avocado is due next spring as a closed model [1].")
    assert not answer["content"].endswith(WRITING_MARK)
    assert len(answer["components"][0]["components"]) == 3  # Sources, 👍, 👎
    assert int(answer["id"]) in fake.channels  # the thread for follow-ups
    assert_nothing_pings(fake)


async def test_an_answer_that_cannot_be_posted_takes_its_unchecked_preview_back(
    fake: FakeDiscord, llm_citebot: CitebotBot, fake_llm: FakeLLM
) -> None:
    unchecked = "UNSUPPORTED: Avocado ships tomorrow."
    fake_llm.script(
        Reply.answer(lambda r: unchecked + " " + distill_answer(r), chunk_delay_seconds=0.1)
    )
    fake.fail(
        lambda method, path, body: method == "PATCH" and bool((body or {}).get("components")),
        400,
        50035,
        "Invalid Form Body",
    )

    interaction = await fake.send_slash_command("ask", {"question": DISTILL_QUESTION})
    [apology] = await private_replies(fake, interaction)

    assert any(unchecked in body["content"] for body in answer_edits(fake, interaction))
    assert fake.messages_for(interaction) == [apology]  # the preview was deleted
    assert apology["flags"] & EPHEMERAL
    assert apology["content"] == "Something went wrong on my side; the error was logged."


async def test_follow_ups_are_condensed_by_the_model(
    fake: FakeDiscord, llm_citebot: CitebotBot, fake_llm: FakeLLM
) -> None:
    def launch_answer(request: LLMRequest) -> str:
        return f"Avocado is due next spring [{request.passage_with('明年春季')}]."

    fake_llm.script(
        Reply.answer(distill_answer),
        Reply.answer("When is Meta's Avocado model expected to launch?"),
        Reply.answer(launch_answer),
    )
    first = await run_command(fake, llm_citebot, "ask", {"question": DISTILL_QUESTION})

    follow_up = await run_command(
        fake, llm_citebot, "ask", {"question": "and when?"}, channel_id=first.original_id
    )

    _, condense, answer_request = fake_llm.requests
    assert DISTILL_QUESTION in condense.user
    assert condense.user.endswith("Follow-up question: and when?")
    assert "Question: When is Meta's Avocado model expected to launch?" in answer_request.user
    [answer] = fake.messages_for(follow_up)
    assert answer["content"] == "Avocado is due next spring [1]."


async def test_with_rewriting_a_follow_up_still_costs_one_call_before_its_answer(
    fake: FakeDiscord, indexed_engine: Engine, fake_llm: FakeLLM
) -> None:
    def launch_answer(request: LLMRequest) -> str:
        return f"Avocado is due next spring [{request.passage_with('明年春季')}]."

    settings = with_llm(indexed_engine.settings, fake_llm, llm_rewrite_queries=True)
    engine = Engine(settings, embedder=indexed_engine.embedder)
    fake_llm.script(
        Reply.answer("TBD 從哪些模型擷取了能力？"),
        Reply.answer(distill_answer),
        Reply.answer(
            "When is Meta's Avocado model expected to launch?\nMeta 的 Avocado 模型預計何時推出？"
        ),
        Reply.answer(launch_answer),
    )
    async with running_bot(fake, make_bot(engine, fake)) as bot:
        first = await run_command(fake, bot, "ask", {"question": DISTILL_QUESTION})
        follow_up = await run_command(
            fake, bot, "ask", {"question": "and when?"}, channel_id=first.original_id
        )

    rewrite, first_answer, condense, answer_request = fake_llm.requests
    assert rewrite.user == f"<<question>>\n{DISTILL_QUESTION}\n<<end question>>"
    assert f"Question: {DISTILL_QUESTION}" in first_answer.user
    assert "Reply with exactly two lines" in condense.system
    assert condense.user.endswith("Follow-up question: and when?")
    assert "Question: When is Meta's Avocado model expected to launch?" in answer_request.user
    [answer] = fake.messages_for(follow_up)
    assert answer["content"] == "Avocado is due next spring [1]."


async def test_status_names_the_model_answering(fake: FakeDiscord, llm_citebot: CitebotBot) -> None:
    interaction = await run_command(fake, llm_citebot, "status")
    [reply] = await private_replies(fake, interaction)

    fields = {field["name"]: field["value"] for field in reply["embeds"][0]["fields"]}
    assert fields["Answers"] == f"LLM ({FAKE_MODEL}), hybrid retrieval"
