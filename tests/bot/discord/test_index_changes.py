"""The running bot and an index that changes under it: a `citebot index` from another process,
and a Chroma server that goes down and comes back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.answer.engine import Engine
from bot.discord.bot import ReaderCache
from tests.bot.discord.conftest import (
    index_in_another_process,
    make_bot,
    make_settings,
    private_replies,
    run_command,
)
from tests.helpers.chroma import chroma_server, free_port, new_database
from tests.helpers.fake_discord import EPHEMERAL, FakeDiscord, running_bot

FERRY = (
    "date 2025-12-20 Matsu gets a new ferry\n\n"
    "The new ferry to Matsu is named Blue Whale. It carries 400 passengers and starts "
    "service in March.\n"
)
FERRY_QUESTION = "What is the new ferry to Matsu named?"


async def test_the_next_answer_uses_an_index_another_process_updated(
    fake: FakeDiscord, citebot, indexed_engine: Engine, articles: Path
) -> None:
    before = await run_command(fake, citebot, "ask", {"question": FERRY_QUESTION})
    (articles / "ferry.txt").write_text(FERRY, encoding="utf-8")
    done = await asyncio.to_thread(index_in_another_process, indexed_engine, articles)
    assert "1 added" in done.stdout
    after = await run_command(fake, citebot, "ask", {"question": FERRY_QUESTION})

    assert "Blue Whale" not in fake.messages_for(before)[0]["content"]
    [answer, *_] = fake.messages_for(after)
    assert "Blue Whale" in answer["content"]
    footers = [embed["footer"]["text"] for embed in answer["embeds"]]
    assert any("ferry.txt" in footer for footer in footers)


async def test_while_chroma_is_down_the_bot_says_so_politely_and_recovers(
    fake: FakeDiscord, tmp_path: Path, articles: Path, embedder
) -> None:
    port, path = free_port(), tmp_path / "chroma-server"
    first = chroma_server(path, port)
    url = first.__enter__()
    try:
        settings = make_settings(
            tmp_path / "data", articles, chroma_url=url, chroma_database=new_database(url)
        )
        engine = Engine(settings, embedder=embedder)
        await asyncio.to_thread(engine.corpus().sync, [articles])
        async with running_bot(fake, make_bot(engine, fake)) as bot:
            up = await run_command(fake, bot, "ask", {"question": "What models did TBD distill?"})
            first.__exit__(None, None, None)
            first = None
            down = await fake.send_slash_command("ask", {"question": "And Qwen?"})
            [apology] = await private_replies(fake, down)
            with chroma_server(path, port):
                back = await run_command(fake, bot, "ask", {"question": "What did TBD distill?"})
                answered_again = fake.messages_for(back)[0]["content"]
    finally:
        if first is not None:
            first.__exit__(None, None, None)

    assert "Gemma" in fake.messages_for(up)[0]["content"]
    assert apology["flags"] & EPHEMERAL
    assert apology["content"].startswith("the index is unavailable")
    assert f"127.0.0.1:{port}" in apology["content"]
    assert "Traceback" not in apology["content"]
    assert "Gemma" in answered_again


async def test_questions_arriving_together_build_a_changed_collections_reader_once(
    indexed_engine: Engine, articles: Path, monkeypatch
) -> None:
    cache = ReaderCache(indexed_engine)
    collection = indexed_engine.settings.collection
    before = await cache.get(collection)
    (articles / "ferry.txt").write_text(FERRY, encoding="utf-8")
    await asyncio.to_thread(indexed_engine.corpus().sync, [articles])
    builds: list[str] = []
    build = cache._build
    monkeypatch.setattr(cache, "_build", lambda name: builds.append(name) or build(name))

    readers = await asyncio.gather(*(cache.get(collection) for _ in range(4)))

    assert builds == [collection]  # one build for the new generation, not one per question
    assert all(reader is readers[0] for reader in readers)
    assert readers[0].version != before.version
