"""/ask end to end: deferral, cited answer, sources, mentions, threads, cooldown and errors."""

from __future__ import annotations

import asyncio
import re
import types
from pathlib import Path
from typing import Any

import discord.webhook.async_
import pytest

from bot.answer.engine import Engine
from bot.discord.bot import CitebotBot
from bot.discord.cogs.ask import EXPIRY_MARGIN_SECONDS
from bot.discord.messages import STILL_WORKING
from index.store import IndexMissingError, StoreUnavailableError
from tests.bot.discord.conftest import (
    assert_nothing_pings,
    make_bot,
    private_replies,
    run_command,
    write_articles,
)
from tests.conftest import SEED_ARTICLE
from tests.helpers.fake_discord import (
    DEFERRED_CHANNEL_MESSAGE,
    EPHEMERAL,
    FakeDiscord,
    running_bot,
)

DISTILL_QUESTION = "What models did TBD distill from?"


def custom_ids(message: dict[str, Any]) -> list[str]:
    """The custom ids of a message's buttons, in order."""
    return [button["custom_id"] for row in message["components"] for button in row["components"]]


def quotes(messages: list[dict[str, Any]]) -> list[str]:
    """The source quotes (embed descriptions) of messages."""
    return [embed["description"] for message in messages for embed in message["embeds"]]


async def test_ask_defers_at_once_and_answers_with_a_cited_quote(
    fake: FakeDiscord, citebot: CitebotBot
) -> None:
    interaction = await run_command(fake, citebot, "ask", {"question": DISTILL_QUESTION})

    callback = fake.requests_for(interaction)[0]
    assert callback.path == interaction.callback_path
    assert callback.status == 200  # within the fake's 3 s deadline
    assert callback.json["type"] == DEFERRED_CHANNEL_MESSAGE
    messages = fake.messages_for(interaction)
    answer = messages[0]
    for model in ("Gemma", "gpt-oss", "Qwen"):
        assert model in answer["content"]
    assert re.search(r"\[\d+\]", answer["content"])
    assert any(all(m in quote for m in ("Gemma", "gpt-oss", "Qwen")) for quote in quotes(messages))
    footers = [embed["footer"]["text"] for message in messages for embed in message["embeds"]]
    assert f"2025-12-11 · {SEED_ARTICLE}" in footers
    [sources, up, down] = custom_ids(answer)
    assert re.fullmatch(r"citebot:sources:[0-9a-f]{16}", sources)
    assert (up, down) == (f"{sources.replace('sources', 'vote')}:up", f"{up[:-3]}:down")
    thread = fake.channels[int(answer["id"])]  # opened on the answer, for follow-ups
    assert thread["parent_id"] == str(fake.channel_id)
    assert thread["name"] == DISTILL_QUESTION
    assert_nothing_pings(fake)


async def test_mentions_in_articles_ping_no_one(
    fake: FakeDiscord, indexed_engine: Engine, articles: Path
) -> None:
    party = (
        "date 2025-12-01 Launch party\n\n"
        "The invitation for the launch party asked @everyone and <@123> to bring dumplings, "
        "and told @here to arrive early.\n"
    )
    write_articles(articles, {"party.txt": party})
    indexed_engine.corpus().sync([articles])
    async with running_bot(fake, make_bot(indexed_engine, fake)) as bot:
        interaction = await run_command(
            fake, bot, "ask", {"question": "Who should bring dumplings to the launch party?"}
        )

    messages = fake.messages_for(interaction)
    shown = " ".join([messages[0]["content"], *quotes(messages)])
    assert "dumplings" in shown
    assert "@\u200beveryone" in shown
    assert "<@\u200b123>" in shown
    assert "@everyone" not in shown
    assert "@here" not in shown
    assert "<@123>" not in shown
    assert_nothing_pings(fake)


async def test_follow_up_in_the_thread_is_answered_with_the_thread_history(
    fake: FakeDiscord, citebot: CitebotBot
) -> None:
    first = await run_command(
        fake, citebot, "ask", {"question": "What did TBD distill Avocado from?"}
    )
    thread_id = first.original_id
    assert thread_id is not None

    follow_up = await run_command(
        fake, citebot, "ask", {"question": "and when will it launch?"}, channel_id=thread_id
    )

    [answer, *_] = messages = fake.messages_for(follow_up)
    assert answer["channel_id"] == str(thread_id)  # answered in place, no new thread
    assert thread_id in fake.channels
    assert len([c for c in fake.channels.values() if c["type"] == 11]) == 1
    assert "明年春季" in answer["content"]
    launch = [e for m in messages for e in m["embeds"] if "明年春季" in e["description"]]
    assert launch
    assert launch[0]["footer"]["text"].endswith(SEED_ARTICLE)


async def test_second_question_within_the_cooldown_is_refused_privately(
    fake: FakeDiscord, tmp_path: Path, indexed_engine: Engine
) -> None:
    engine = Engine(
        indexed_engine.settings.model_copy(update={"ask_cooldown_seconds": 30.0}),
        embedder=indexed_engine.embedder,
    )
    async with running_bot(fake, make_bot(engine, fake)) as bot:
        await run_command(fake, bot, "ask", {"question": DISTILL_QUESTION})
        again = await fake.send_slash_command("ask", {"question": DISTILL_QUESTION})
        [refusal] = await private_replies(fake, again)

    assert re.fullmatch(r"You're asking quickly: try again in \d+ s\.", refusal["content"])
    assert int(re.findall(r"\d+", refusal["content"])[0]) <= 30


async def test_asking_before_anything_is_indexed_says_so_once_and_privately(
    fake: FakeDiscord, engine: Engine
) -> None:
    with pytest.raises(IndexMissingError) as missing:
        engine.retriever()
    async with running_bot(fake, make_bot(engine, fake)):
        interaction = await fake.send_slash_command("ask", {"question": DISTILL_QUESTION})
        await private_replies(fake, interaction)

    [reply] = fake.messages_for(interaction)  # the public "thinking…" placeholder is gone
    assert reply["flags"] & EPHEMERAL
    assert reply["content"] == str(missing.value)


async def test_an_abstention_posts_no_thread_and_no_buttons(
    fake: FakeDiscord, citebot: CitebotBot
) -> None:
    threads_before = len([c for c in fake.channels.values() if c["type"] == 11])
    interaction = await run_command(
        fake, citebot, "ask", {"question": "How do I reset my router password?"}
    )

    [answer] = fake.messages_for(interaction)
    assert "don't answer" in answer["content"]
    assert not answer.get("components")
    assert len([c for c in fake.channels.values() if c["type"] == 11]) == threads_before


async def test_a_question_taken_up_late_says_so_and_is_answered_in_the_channel(
    fake: FakeDiscord, citebot: CitebotBot
) -> None:
    interaction = await run_command(
        fake,
        citebot,
        "ask",
        {"question": DISTILL_QUESTION},
        token_seconds_left=EXPIRY_MARGIN_SECONDS - 10,  # less than the margin: moved at once
    )

    [notice] = fake.messages_for(interaction)  # the "thinking…" placeholder, replaced
    assert notice["content"] == STILL_WORKING
    assert not notice["flags"] & EPHEMERAL
    [answer] = [m for m in fake.messages_in(fake.channel_id) if m["id"] != notice["id"]]
    heading, quote = answer["content"].split("\n")[:2]
    assert heading == f"-# Answer to <@{fake.member_user.id}>: “{DISTILL_QUESTION}”"
    assert all(model in quote for model in ("Gemma", "gpt-oss", "Qwen"))
    assert len(custom_ids(answer)) == 3
    assert fake.channels[int(answer["id"])]["name"] == DISTILL_QUESTION  # its thread
    assert_nothing_pings(fake)


async def test_a_rate_limited_answer_waits_and_is_posted_once(
    fake: FakeDiscord, citebot: CitebotBot
) -> None:
    fake.fail(
        lambda method, path, body: method == "POST" and "/webhooks/" in path, 429, retry_after=0.5
    )

    interaction = await run_command(fake, citebot, "ask", {"question": DISTILL_QUESTION})

    posts = [
        r for r in fake.requests_for(interaction) if r.method == "POST" and "/webhooks/" in r.path
    ]
    assert [r.status for r in posts[:2]] == [429, 200]
    [answer] = fake.messages_for(interaction)
    assert "Gemma" in answer["content"]
    assert len(custom_ids(answer)) == 3


async def test_discord_failing_to_take_the_answer_is_one_log_line_and_a_retry_hint(
    fake: FakeDiscord, citebot: CitebotBot, monkeypatch, caplog
) -> None:
    # discord.py tries a webhook call five times, 1 to 9 s apart, before it gives up on a 5xx:
    # the same tries, without the waits.
    no_waits = types.ModuleType("asyncio")
    no_waits.__dict__.update(vars(asyncio))

    async def no_wait(delay: float) -> None:
        await asyncio.sleep(0)

    no_waits.sleep = no_wait  # type: ignore[attr-defined]
    monkeypatch.setattr(discord.webhook.async_, "asyncio", no_waits)
    fake.fail(lambda method, path, body: method == "POST" and "/webhooks/" in path, 503, times=5)

    interaction = await fake.send_slash_command("ask", {"question": DISTILL_QUESTION})

    [reply] = await private_replies(fake, interaction)
    assert "Discord could not take my reply" in reply["content"]
    assert "Gemma" not in reply["content"]
    failures = [r for r in caplog.records if "Discord failed in ask" in r.getMessage()]
    assert len(failures) == 1
    assert "503" in failures[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info or r.levelname == "ERROR"]


async def test_an_answer_the_data_directory_cannot_take_is_posted_without_buttons(
    fake: FakeDiscord, citebot: CitebotBot, monkeypatch, caplog
) -> None:
    def read_only(posted: object) -> None:
        raise StoreUnavailableError("the index is unavailable: /srv/data cannot be written")

    monkeypatch.setattr(citebot.feedback, "save_answer", read_only)

    interaction = await run_command(fake, citebot, "ask", {"question": DISTILL_QUESTION})

    [answer] = fake.messages_for(interaction)
    assert all(model in answer["content"] for model in ("Gemma", "gpt-oss", "Qwen"))
    assert not answer.get("components")  # votes and sources need the saved answer
    assert int(answer["id"]) not in fake.channels  # and so do follow-ups
    assert "posted without buttons or thread: the index is unavailable" in caplog.text
