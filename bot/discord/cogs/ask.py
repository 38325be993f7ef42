"""/ask: answer from the channel's articles, with sources, buttons and a thread for follow-ups.

A generated answer is shown as it is written (the message edited at most once per
`STREAM_EDIT_SECONDS`, within Discord's rate limits), then replaced by the checked answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.answer.conversation import Turn
from bot.answer.extractive import Answer, TextCallback, clean_question
from bot.answer.pipeline import AnswerPipeline
from bot.discord.bot import CitebotBot, bot_of, edit_message, send_ephemeral, send_followup
from bot.discord.cogs.feedback import answer_view
from bot.discord.feedback import PostedAnswer, new_answer_id, now
from bot.discord.messages import answer_payloads, streaming_payload, thread_name
from bot.discord.throttle import ThrottledPublisher

log = logging.getLogger("citebot.discord")

STREAM_EDIT_SECONDS = 1.2
BUSY = (
    "Many questions are being answered right now, and yours would wait too long: "
    "please ask again in a minute."
)


def _ask_cooldown(interaction: discord.Interaction[Any]) -> app_commands.Cooldown | None:
    """One question per user per `CITEBOT_ASK_COOLDOWN_SECONDS` (0 turns the cooldown off)."""
    seconds = bot_of(interaction).settings.ask_cooldown_seconds
    return app_commands.Cooldown(1, seconds) if seconds > 0 else None


class Ask(commands.Cog):
    """Answers questions; in a thread it answers follow-ups with the thread's history."""

    def __init__(self, bot: CitebotBot) -> None:
        self.bot = bot
        settings = bot.settings
        self.queue = QuestionQueue(
            settings.max_concurrent_questions + settings.max_queued_questions
        )

    @app_commands.command(name="ask", description="Answer from the team's articles, with sources")
    @app_commands.describe(question="What you want to know")
    @app_commands.guild_only()
    @app_commands.checks.dynamic_cooldown(_ask_cooldown)
    async def ask(self, interaction: discord.Interaction[CitebotBot], question: str) -> None:
        """Answer, or, when the queue is full, say so at once (privately): either way the
        interaction is acknowledged well within Discord's 3 s."""
        if not self.queue.admit():
            await send_ephemeral(interaction, BUSY)
            return
        try:
            await self._ask(interaction, question)
        finally:
            self.queue.leave()

    async def _ask(self, interaction: discord.Interaction[CitebotBot], question: str) -> None:
        """Defer at once, answer in a worker thread (showing a generated answer as it is
        written), post the answer, then open a thread."""
        await interaction.response.defer(thinking=True)
        channel = interaction.channel
        thread = channel if isinstance(channel, discord.Thread) else None
        scope = self.bot.scope_for(channel)
        history = (
            await asyncio.to_thread(self.bot.feedback.thread_turns, thread.id) if thread else []
        )
        preview = _Preview(interaction)
        publisher = ThrottledPublisher(preview.show, STREAM_EDIT_SECONDS)
        try:
            async with self.bot.question_slots:
                reader = await self.bot.readers.get(scope.collection)
                question, query, answer = await asyncio.to_thread(
                    self._answer, reader.answerer, history, question, publisher.push_threadsafe
                )
        finally:
            await publisher.close()
        posted = PostedAnswer(
            id=new_answer_id(),
            question=question,
            query=query,
            text=answer.text,
            citations=answer.citations,
            collection=scope.collection,
            channel_id=interaction.channel_id,
            thread_id=thread.id if thread else None,
            user_id=interaction.user.id,
            created=now(),
        )
        await asyncio.to_thread(self.bot.feedback.save_answer, posted)
        first = await self._post(interaction, answer, posted.id, preview.message)
        if isinstance(channel, discord.TextChannel) and not answer.abstained:
            await self._open_thread(channel, first, posted)  # an abstention has nothing to follow

    def _answer(
        self,
        answerer: AnswerPipeline,
        history: Sequence[Turn],
        question: str,
        on_text: TextCallback,
    ) -> tuple[str, str, Answer]:
        """(question as asked and stored, retrieval query, answer); the pipeline condenses a
        follow-up with its history into the query."""
        question = clean_question(question, self.bot.settings.max_question_chars)
        answer = answerer.answer(question, on_text, history=history)
        return question, answer.question, answer

    async def _post(
        self,
        interaction: discord.Interaction[CitebotBot],
        answer: Answer,
        answer_id: str,
        preview: discord.WebhookMessage | None,
    ) -> discord.WebhookMessage:
        """Send the answer (as many messages as it takes), its first part replacing the
        preview if there is one; the buttons go on the first message."""
        first, *rest = answer_payloads(answer)
        # An abstention is not an answer to vote on or open sources of: no buttons.
        view = (
            None
            if answer.abstained
            else answer_view(answer_id, with_sources=bool(answer.citations))
        )
        if preview is None:
            message = await send_followup(interaction, first, view=view)
        else:
            message = await edit_message(preview, first, view=view)
        for payload in rest:
            await send_followup(interaction, payload)
        return message

    async def _open_thread(
        self, channel: discord.TextChannel, message: discord.Message, posted: PostedAnswer
    ) -> None:
        """Open a thread on the answer for follow-ups; the answer stays if that is refused."""
        try:
            thread = await channel.create_thread(
                name=thread_name(posted.question), message=discord.Object(message.id)
            )
        except discord.HTTPException as error:
            log.warning("no thread for answer %s: %s", posted.id, error)
            return
        await asyncio.to_thread(self.bot.feedback.set_thread, posted.id, thread.id)


class QuestionQueue:
    """Counts the questions being answered or waiting for a slot, and admits at most `limit`:
    beyond that a question would wait minutes, and is better turned away at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.admitted = 0

    def admit(self) -> bool:
        """Take a place in the queue; False when it is full."""
        if self.admitted >= self.limit:
            return False
        self.admitted += 1
        return True

    def leave(self) -> None:
        """Give the place back (the question was answered or failed)."""
        self.admitted -= 1


class _Preview:
    """The answer message while a generated answer is written: posted with the first text,
    edited with each later one."""

    def __init__(self, interaction: discord.Interaction[CitebotBot]) -> None:
        self._interaction = interaction
        self.message: discord.WebhookMessage | None = None

    async def show(self, text: str) -> None:
        """Post or update the message with the answer so far."""
        payload = streaming_payload(text)
        if self.message is None:
            self.message = await send_followup(self._interaction, payload)
        else:
            await edit_message(self.message, payload)


async def setup(bot: CitebotBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Ask(bot))
