"""The Sources and 👍/👎 buttons: stored in SQLite, and still working after a restart."""

from __future__ import annotations

import json
import sqlite3

from bot.answer.engine import Engine
from bot.discord.feedback import FEEDBACK_FILE, FeedbackStore
from tests.bot.discord.conftest import (
    assert_nothing_pings,
    make_bot,
    private_replies,
    run_command,
)
from tests.bot.discord.test_ask import DISTILL_QUESTION, custom_ids
from tests.conftest import SEED_ARTICLE
from tests.helpers.fake_discord import FakeDiscord, running_bot


def stored_votes(engine: Engine) -> list[sqlite3.Row]:
    """The votes table, by user."""
    with sqlite3.connect(engine.settings.data_dir / FEEDBACK_FILE) as connection:
        connection.row_factory = sqlite3.Row
        return connection.execute("SELECT * FROM votes ORDER BY user_id").fetchall()


async def test_buttons_store_votes_and_keep_working_after_a_restart(
    fake: FakeDiscord, indexed_engine: Engine
) -> None:
    async with running_bot(fake, make_bot(indexed_engine, fake)) as bot:
        asked = await run_command(fake, bot, "ask", {"question": DISTILL_QUESTION})
        answer = fake.messages_for(asked)[0]
        sources_button, up_button, down_button = custom_ids(answer)
        vote = await fake.click_button(answer, up_button)
        [thanks] = await private_replies(fake, vote)

    assert thanks["content"] == "Thanks for the feedback 👍"
    [up] = stored_votes(indexed_engine)
    assert (up["user_id"], up["verdict"], up["question"]) == (
        fake.member_user.id,
        "up",
        DISTILL_QUESTION,
    )
    # The vote keeps the answer's text; the message shows it as a quote with its source.
    assert up["answer"].partition(" [1]")[0] in answer["content"]
    posted = FeedbackStore(indexed_engine.settings.data_dir / FEEDBACK_FILE).answer(up["answer_id"])
    assert posted is not None
    assert sources_button == f"citebot:sources:{posted.id}"
    assert json.loads(up["chunk_ids"]) == [citation.chunk_id for citation in posted.citations]
    assert {citation.article for citation in posted.citations} == {SEED_ARTICLE}

    restarted = Engine(indexed_engine.settings, embedder=indexed_engine.embedder)
    async with running_bot(fake, make_bot(restarted, fake)) as bot:
        show = await fake.click_button(answer, sources_button, user=fake.admin_user)
        sources = await private_replies(fake, show)
        vote = await fake.click_button(answer, down_button, user=fake.admin_user)
        await private_replies(fake, vote)
        change = await fake.click_button(answer, down_button)  # the member changes their mind
        await private_replies(fake, change)

    whole_quotes = [embed["description"] for message in sources for embed in message["embeds"]]
    assert any("Gemma" in quote and "gpt-oss" in quote for quote in whole_quotes)
    previews = [embed["description"] for embed in answer["embeds"]]
    assert sorted(whole_quotes) == sorted(previews)  # short quotes: the preview was whole too
    assert_nothing_pings(fake)
    assert [(row["user_id"], row["verdict"]) for row in stored_votes(indexed_engine)] == [
        (fake.admin_user.id, "down"),
        (fake.member_user.id, "down"),
    ]


async def test_a_click_on_an_answer_no_longer_on_record_is_explained(
    fake: FakeDiscord, indexed_engine: Engine
) -> None:
    async with running_bot(fake, make_bot(indexed_engine, fake)) as bot:
        asked = await run_command(fake, bot, "ask", {"question": DISTILL_QUESTION})
        answer = fake.messages_for(asked)[0]
        with sqlite3.connect(indexed_engine.settings.data_dir / FEEDBACK_FILE) as connection:
            connection.execute("DELETE FROM answers")
        show = await fake.click_button(answer, custom_ids(answer)[0])
        [reply] = await private_replies(fake, show)

    assert reply["content"] == "I no longer have the sources of this answer."
