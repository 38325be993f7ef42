"""/ask: answer from the channel's articles, with sources, buttons and a thread for follow-ups."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.answering import Answer, ExtractiveAnswerer, clean_question
from bot.client import CitebotBot, bot_of, send_followup
from bot.cogs.feedback import answer_view
from bot.conversation import QueryCondenser, RecentQuestionsCondenser, Turn
from bot.feedback import PostedAnswer, new_answer_id, now
from bot.messages import answer_payloads, thread_name

log = logging.getLogger("citebot.discord")


def _ask_cooldown(interaction: discord.Interaction[Any]) -> app_commands.Cooldown | None:
    """One question per user per `CITEBOT_ASK_COOLDOWN_SECONDS` (0 turns the cooldown off)."""
    seconds = bot_of(interaction).settings.ask_cooldown_seconds
    return app_commands.Cooldown(1, seconds) if seconds > 0 else None


class Ask(commands.Cog):
    """Answers questions; in a thread it answers follow-ups with the thread's history."""

    def __init__(self, bot: CitebotBot, condenser: QueryCondenser | None = None) -> None:
        self.bot = bot
        self.condenser = condenser or RecentQuestionsCondenser(bot.settings.max_question_chars)

    @app_commands.command(name="ask", description="Answer from the team's articles, with sources")
    @app_commands.describe(question="What you want to know")
    @app_commands.guild_only()
    @app_commands.checks.dynamic_cooldown(_ask_cooldown)
    async def ask(self, interaction: discord.Interaction[CitebotBot], question: str) -> None:
        """Defer at once, answer in a worker thread, post the answer, then open a thread."""
        await interaction.response.defer(thinking=True)
        channel = interaction.channel
        thread = channel if isinstance(channel, discord.Thread) else None
        scope = self.bot.scope_for(channel)
        history = (
            await asyncio.to_thread(self.bot.feedback.thread_turns, thread.id) if thread else []
        )
        async with self.bot.question_slots:
            reader = await self.bot.readers.get(scope.collection)
            question, query, answer = await asyncio.to_thread(
                self._answer, reader.answerer, history, question
            )
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
        first = await self._post(interaction, answer, posted.id)
        if isinstance(channel, discord.TextChannel):
            await self._open_thread(channel, first, posted)

    def _answer(
        self, answerer: ExtractiveAnswerer, history: Sequence[Turn], question: str
    ) -> tuple[str, str, Answer]:
        """(question, retrieval query, answer); a follow-up is condensed with its history."""
        question = clean_question(question, self.bot.settings.max_question_chars)
        query = self.condenser.condense(history, question) if history else question
        return question, query, answerer.answer(query)

    async def _post(
        self, interaction: discord.Interaction[CitebotBot], answer: Answer, answer_id: str
    ) -> discord.WebhookMessage:
        """Send the answer (as many messages as it takes); the buttons go on the first one."""
        first, *rest = answer_payloads(answer)
        view = answer_view(answer_id, with_sources=bool(answer.citations))
        message = await send_followup(interaction, first, view=view)
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


async def setup(bot: CitebotBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Ask(bot))
