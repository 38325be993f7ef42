"""Team channels: each mapped channel (or category) answers from its own folder only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.answer.engine import Engine
from bot.discord.channels import ChannelMap, ChannelMapError, Scope
from tests.bot.discord.conftest import DISTRACTORS, make_bot, run_command, write_articles
from tests.bot.discord.test_ask import DISTILL_QUESTION
from tests.conftest import SEED_ARTICLE
from tests.helpers.fake_discord import FakeDiscord, running_bot


def footers(fake: FakeDiscord, channel_id: int) -> list[str]:
    """The source footers ("date · article") of every answer in a channel or thread."""
    return [
        embed["footer"]["text"]
        for message in fake.messages_in(channel_id)
        for embed in message["embeds"]
    ]


async def test_two_channels_answer_from_their_own_folders_and_threads_follow_them(
    fake: FakeDiscord, engine: Engine, tmp_path: Path, seed_articles: Path
) -> None:
    research = tmp_path / "research"
    research.mkdir()
    shutil.copy(seed_articles / SEED_ARTICLE, research)
    write_articles(tmp_path / "sales", {"bubble-tea.md": DISTRACTORS["bubble-tea.md"]})
    sales_category = await fake.add_category("Sales")
    sales_channel = await fake.add_text_channel("sales-chat", category_id=sales_category)
    channels_file = tmp_path / "channels.toml"
    channels_file.write_text(
        f'[channels.{fake.channel_id}]\narticles = "research"\ncollection = "research"\n\n'
        f'[channels.{sales_category}]  # a category\narticles = "sales"\ncollection = "sales"\n'
    )
    channel_map = ChannelMap.load(channels_file, Scope(engine.settings.articles_dir, "articles"))
    for scope in channel_map.scopes()[1:]:
        engine.corpus(scope.collection).sync([scope.articles])

    async with running_bot(fake, make_bot(engine, fake, channel_map)) as bot:
        await run_command(fake, bot, "ask", {"question": DISTILL_QUESTION})
        sales_question = {"question": "Where are tapioca pearls imported from?"}
        asked = await run_command(fake, bot, "ask", sales_question, channel_id=sales_channel)
        thread_id = asked.original_id
        assert thread_id is not None
        await run_command(fake, bot, "ask", {"question": DISTILL_QUESTION}, channel_id=thread_id)

    research_sources = footers(fake, fake.channel_id)
    assert research_sources
    assert all(footer.endswith(SEED_ARTICLE) for footer in research_sources)
    sales_sources = footers(fake, sales_channel) + footers(fake, thread_id)
    assert len(footers(fake, thread_id)) >= 1  # the thread asked about Avocado, sales has none
    assert all(footer.endswith("bubble-tea.md") for footer in sales_sources)
    assert "Taiwan" in fake.messages_in(sales_channel)[0]["content"]


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ("[channels.general]\narticles = 'a'\ncollection = 'abc'\n", "must be a channel or"),
        ("[channels.1]\narticles = 'a'\n", "missing: collection"),
        ("[channels.1]\narticles = 'a'\ncollection = 'x'\n", "collection name 'x'"),
        ("[channels.1]\narticles = 'nowhere'\ncollection = 'abc'\n", "does not exist"),
        ("[channels.1]\narticles = 'a'\ncollection = 'articles'\n", "mapped to two folders"),
        ("[teams]\n", "unknown key(s) teams"),
        ("[channels.1\n", "invalid TOML"),
    ],
)
def test_an_invalid_channels_file_is_refused_with_the_reason(
    tmp_path: Path, toml: str, problem: str
) -> None:
    (tmp_path / "a").mkdir()
    channels_file = tmp_path / "channels.toml"
    channels_file.write_text(toml)

    with pytest.raises(ChannelMapError, match=r"channels file .*channels\.toml") as error:
        ChannelMap.load(channels_file, Scope(tmp_path / "articles", "articles"))
    assert problem in str(error.value)


def test_a_channel_mapping_wins_over_its_category_and_the_default_covers_the_rest(
    tmp_path: Path,
) -> None:
    default, team, other = (Scope(tmp_path / name, name) for name in ("main", "team", "other"))
    channel_map = ChannelMap(default, {1: team, 2: other})

    assert channel_map.scope_for(1, 2) == team
    assert channel_map.scope_for(3, 2) == other
    assert channel_map.scope_for(3, 4) == default
    assert channel_map.scopes() == [default, team, other]
    assert ChannelMap.load(None, default).scope_for(1) == default
