"""The bot and faults of its embedded store's data directory: while it runs, `/ask` and
`/search` say the index is unavailable, politely and privately, the bot stays up, and it
answers again once the fault is cleared, without a restart; a read-only data directory at
start is one line."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.answer.engine import Engine
from bot.discord.bot import serve
from index.store import StoreUnavailableError
from tests.bot.discord.conftest import (
    index_in_another_process,
    make_bot,
    make_settings,
    private_replies,
    run_command,
)
from tests.helpers.chroma import server_mode
from tests.helpers.fake_discord import EPHEMERAL, FakeDiscord, discord_endpoints, running_bot
from tests.helpers.mounts import read_only_view

pytestmark = pytest.mark.skipif(server_mode(), reason="faults of the embedded store's files")

QUESTION = "What models did TBD distill?"


def _garble(engine: Engine) -> None:
    """Garbage over the database's header, in place (the bot's open handle reads it)."""
    with engine.connection.database.open("r+b") as file:
        file.write(os.urandom(4096))


def _move_away(engine: Engine) -> None:
    chroma = engine.connection.chroma_dir
    chroma.rename(chroma.with_name("chroma.away"))


def _move_back(engine: Engine, articles: Path) -> None:
    chroma = engine.connection.chroma_dir
    chroma.with_name("chroma.away").rename(chroma)


FAULTS = [
    pytest.param(
        _garble,
        lambda engine, articles: index_in_another_process(engine, articles, "--rebuild"),
        "is damaged; rebuild it with `citebot index --rebuild`",
        id="database-garbled-then-rebuilt",
    ),
    pytest.param(_move_away, _move_back, "is gone; restore it", id="store-moved-away-and-back"),
    pytest.param(
        lambda engine: shutil.rmtree(engine.settings.data_dir),
        index_in_another_process,
        "is gone; restore it, or run `citebot index PATH`",
        id="data-directory-deleted-then-indexed",
    ),
]


@pytest.mark.parametrize(("fault", "clear", "says"), FAULTS)
async def test_a_data_directory_fault_is_polite_and_the_bot_recovers(
    fake: FakeDiscord,
    tmp_path: Path,
    articles: Path,
    embedder,
    fault: Callable[[Engine], None],
    clear: Callable[[Engine, Path], None],
    says: str,
) -> None:
    engine = Engine(make_settings(tmp_path / "data", articles), embedder=embedder)
    await asyncio.to_thread(engine.corpus().sync, [articles])
    async with running_bot(fake, make_bot(engine, fake)) as bot:
        up = await run_command(fake, bot, "ask", {"question": QUESTION})
        fault(engine)
        asked = await fake.send_slash_command("ask", {"question": "And Qwen?"})
        [apology] = await private_replies(fake, asked)
        searched = await fake.send_slash_command("search", {"query": "Gemma"})
        [search_apology] = await private_replies(fake, searched)
        await asyncio.to_thread(clear, engine, articles)
        back = await run_command(fake, bot, "ask", {"question": QUESTION})
        answered_again = fake.messages_for(back)[0]["content"]

    assert "Gemma" in fake.messages_for(up)[0]["content"]
    for reply in (apology, search_apology):
        assert reply["flags"] & EPHEMERAL
        assert reply["content"].startswith(f"the index is unavailable: {tmp_path / 'data'}")
        assert says in reply["content"]
        assert "\n" not in reply["content"]
    assert fake.messages_for(asked) == [apology], "no public message is left behind"
    assert "Gemma" in answered_again


async def test_a_read_only_data_directory_at_start_is_one_clear_error(
    fake: FakeDiscord, tmp_path: Path, indexed_engine: Engine, articles: Path, embedder
) -> None:
    data_dir = indexed_engine.settings.data_dir
    with read_only_view(data_dir, tmp_path / "read-only") as read_only:
        engine = Engine(make_settings(read_only, articles), embedder=embedder)
        with discord_endpoints(fake), pytest.raises(StoreUnavailableError) as fault:
            await serve(make_bot(engine, fake), fake.token)

    assert str(fault.value) == (
        f"the index is unavailable: {read_only} cannot be written: fix the folder's "
        "permissions (or point CITEBOT_DATA_DIR at a writable folder)"
    )
