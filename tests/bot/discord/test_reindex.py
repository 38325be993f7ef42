"""/reindex: admins only, plan first, one progress message, answers meanwhile, one at a time."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from bot.answer.engine import Engine
from bot.discord.bot import CitebotBot
from bot.discord.cogs.reindex import CANNOT_POST_PROGRESS
from index.store import IndexBusyError
from tests.bot.discord.conftest import (
    assert_nothing_pings,
    make_bot,
    private_replies,
    run_command,
    write_articles,
)
from tests.bot.discord.test_ask import DISTILL_QUESTION
from tests.helpers.embedders import GatedEmbedder
from tests.helpers.fake_discord import FakeDiscord, RecordedRequest, running_bot

GATE_MARKER = "GATE-MARKER"


def progress_edits(fake: FakeDiscord, message_id: str) -> list[RecordedRequest]:
    """The edits of the progress message, in order."""
    path = f"/channels/{fake.channel_id}/messages/{message_id}"
    return [r for r in fake.requests if r.method == "PATCH" and r.path == path]


async def test_reindex_is_refused_to_a_member_even_when_the_server_shows_it_to_them(
    fake: FakeDiscord, citebot: CitebotBot
) -> None:
    with pytest.raises(PermissionError):  # hidden by default_member_permissions
        await fake.send_slash_command("reindex")
    interaction = await fake.send_slash_command("reindex", bypass_default_permissions=True)
    [refusal] = await private_replies(fake, interaction)

    assert refusal["content"] == "Only members who can manage this server may use this command."
    assert fake.messages_for(interaction) == [refusal]


async def test_admin_reindex_plans_shows_progress_and_answers_questions_meanwhile(
    fake: FakeDiscord, indexed_engine: Engine, articles: Path
) -> None:
    # 70 notes: more than one embedding batch (64 chunks), so progress shows before the gate.
    notes = {f"note-{n:03}.txt": f"date 2025-01-01 Note {n}\n\nMemo {n}.\n" for n in range(70)}
    write_articles(
        articles,
        {
            **notes,
            "zz-gate.txt": f"date 2025-01-02 Gate\n\n{GATE_MARKER} closes the run.\n",
            "broken.json": "{not json",
        },
    )
    gated = GatedEmbedder(indexed_engine.embedder, GATE_MARKER)
    engine = Engine(indexed_engine.settings, embedder=gated)
    async with running_bot(fake, make_bot(engine, fake)) as bot:
        finished = asyncio.ensure_future(
            bot.wait_for("app_command_completion", check=lambda _, c: c.name == "reindex")
        )
        reindex = await fake.send_slash_command("reindex", user=fake.admin_user)
        try:
            assert await asyncio.to_thread(gated.reached.wait, 120)  # held inside the run
            again = await fake.send_slash_command("reindex", user=fake.admin_user)
            [refusal] = await private_replies(fake, again)
            asked = await run_command(fake, bot, "ask", {"question": DISTILL_QUESTION})
            answer_during_reindex = fake.messages_for(asked)[0]["content"]
        finally:
            gated.gate.set()
        await asyncio.wait_for(finished, 30)
        status = await run_command(fake, bot, "status")
        [status_reply] = await private_replies(fake, status)

    assert refusal["content"] == "A reindex is already running; try again when it has finished."
    assert "Gemma" in answer_during_reindex
    [plan] = fake.messages_for(reindex)
    assert plan["content"].splitlines() == [
        f"Reindexing collection `articles` from `{articles}`:",
        "• 71 added: `note-000.txt`, `note-001.txt`, `note-002.txt`, `note-003.txt`, "
        "`note-004.txt` and 66 more",
        "• 0 changed",
        "• 0 removed",
        "• 4 unchanged",
    ]
    # The progress message is the one channel message not tied to an interaction.
    [progress] = [m for m in fake.messages_in(fake.channel_id) if "interaction_metadata" not in m]
    edits = [edit.json["content"] for edit in progress_edits(fake, progress["id"])]
    assert re.fullmatch(r"Indexing… \d+/71 articles, \d+ chunks embedded\.", edits[0])
    summary = edits[-1].splitlines()
    assert summary[0].startswith("Reindex of `articles` done in ")
    in_index = indexed_engine.corpus().store()
    in_index.open_for_reading()
    assert summary[0].endswith(
        "71 added, 0 updated, 0 removed, 4 unchanged, 1 failed; "
        f"71 chunks embedded, {in_index.count()} in the index."
    )
    assert in_index.count() > 71
    assert summary[1] == "Could not read:"
    assert summary[2].startswith("• `broken.json`: ")
    assert progress["content"] == edits[-1]
    [collection] = [
        f["value"] for f in status_reply["embeds"][0]["fields"] if "articles" in f["name"]
    ]
    assert_nothing_pings(fake)
    indexed, last_reindex = collection.splitlines()[2:]
    assert indexed == f"75 articles, {in_index.count()} chunks"
    assert re.fullmatch(
        r"Last reindex <t:\d+:R>: 71 added, 0 updated, 0 removed, 1 failed", last_reindex
    )


async def test_reindex_reports_another_process_writing_the_index(
    fake: FakeDiscord, citebot: CitebotBot, indexed_engine: Engine
) -> None:
    other_writer = indexed_engine.corpus()  # as another `citebot index` would hold it
    with other_writer.writer():
        await run_command(fake, citebot, "reindex", user=fake.admin_user)
        with pytest.raises(IndexBusyError) as busy, other_writer.writer():
            pass

    # The progress message is the one channel message not tied to an interaction.
    [stopped] = [m for m in fake.messages_in(fake.channel_id) if "interaction_metadata" not in m]
    assert stopped["content"] == f"Reindex stopped: {busy.value}"


async def test_a_plan_discord_refuses_stops_nothing_the_run_finishes_and_is_recorded(
    fake: FakeDiscord, citebot: CitebotBot, articles: Path
) -> None:
    write_articles(articles, {"new.txt": "date 2025-02-01 New\n\nA new memo on Avocado.\n"})
    fake.fail(lambda method, path, body: method == "POST" and "/webhooks/" in path, 400, 50035)

    await run_command(fake, citebot, "reindex", user=fake.admin_user)
    status = await run_command(fake, citebot, "status")
    [status_reply] = await private_replies(fake, status)

    [progress] = [m for m in fake.messages_in(fake.channel_id) if "interaction_metadata" not in m]
    assert progress["content"].startswith("Reindex of `articles` done in ")
    assert "1 added" in progress["content"]
    fields = status_reply["embeds"][0]["fields"]
    [collection] = [f["value"] for f in fields if "articles" in f["name"]]
    assert re.search(r"Last reindex <t:\d+:R>: 1 added", collection)


async def test_reindex_where_the_bot_cannot_post_says_why_privately(
    fake: FakeDiscord, citebot: CitebotBot
) -> None:
    fake.fail(
        lambda method, path, body: method == "POST" and path.endswith("/messages"),
        403,
        50013,
        "Missing Permissions",
    )

    interaction = await fake.send_slash_command("reindex", user=fake.admin_user)
    [reply] = await private_replies(fake, interaction)

    assert reply["content"] == CANNOT_POST_PROGRESS
    assert fake.messages_for(interaction) == [reply]


async def test_reindex_rebuilds_an_index_another_model_built_and_answers_from_the_new_one(
    fake: FakeDiscord, engine: Engine, articles: Path, minilm
) -> None:
    Engine(engine.settings, embedder=minilm).corpus().sync([articles])  # the model was changed
    async with running_bot(fake, make_bot(engine, fake)) as bot:
        refused = await fake.send_slash_command("ask", {"question": DISTILL_QUESTION})
        [refusal] = await private_replies(fake, refused)
        reindex = await run_command(fake, bot, "reindex", user=fake.admin_user)
        asked = await run_command(fake, bot, "ask", {"question": DISTILL_QUESTION})

    assert "Gemma" not in refusal["content"]
    assert "rebuild" in refusal["content"].lower(), refusal["content"]
    [plan] = fake.messages_for(reindex)
    assert "• 4 added" in plan["content"]  # rebuilt from scratch with the configured model
    assert "Gemma" in fake.messages_for(asked)[0]["content"]
    store = engine.corpus().store()
    store.open_for_reading()  # the live index is the configured model's now
    assert store.count() > 0
    assert_nothing_pings(fake)
