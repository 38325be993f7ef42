"""/ask: answer from the channel's articles, with sources, buttons and a thread for follow-ups.

A generated answer is shown as it is written (the message edited at most once per
`STREAM_EDIT_SECONDS`, within Discord's rate limits), then replaced by the checked answer.
An answer not ready shortly before the interaction's 15-minute token expires says so and is
posted in the channel; one that cannot be saved is posted without buttons; one that cannot be
posted takes its unchecked preview back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.answer.conversation import Turn
from bot.answer.extractive import Answer, TextCallback, clean_question
from bot.answer.pipeline import AnswerPipeline
from bot.discord.bot import (
    CitebotBot,
    UserFacingError,
    bot_of,
    edit_message,
    send_followup,
    send_in_channel,
)
from bot.discord.cogs.feedback import answer_view
from bot.discord.feedback import PostedAnswer, new_answer_id, now
from bot.discord.messages import (
    STILL_WORKING,
    Payload,
    answer_payloads,
    late_answer_heading,
    streaming_payload,
    thread_name,
    with_heading,
)
from bot.discord.throttle import ThrottledPublisher
from bot.errors import CitebotError

log = logging.getLogger("citebot.discord")

STREAM_EDIT_SECONDS = 1.2
# Discord takes answers through an interaction's token for 15 minutes. This long before it
# expires, a question still being answered (a long queue, a slow model) says so through it
# while it can, and its answer is then posted in the channel instead.
EXPIRY_MARGIN_SECONDS = 60.0


def _ask_cooldown(interaction: discord.Interaction[Any]) -> app_commands.Cooldown | None:
    """One question per user per `CITEBOT_ASK_COOLDOWN_SECONDS` (0 turns the cooldown off)."""
    seconds = bot_of(interaction).settings.ask_cooldown_seconds
    return app_commands.Cooldown(1, seconds) if seconds > 0 else None


class Ask(commands.Cog):
    """Answers questions; in a thread it answers follow-ups with the thread's history."""

    def __init__(self, bot: CitebotBot) -> None:
        self.bot = bot

    @app_commands.command(name="ask", description="Answer from the team's articles, with sources")
    @app_commands.describe(question="What you want to know")
    @app_commands.guild_only()
    @app_commands.checks.dynamic_cooldown(_ask_cooldown)
    async def ask(self, interaction: discord.Interaction[CitebotBot], question: str) -> None:
        """Answer, or, when the queue is full, say so at once (privately): either way the
        interaction is acknowledged well within Discord's 3 s."""
        await self.bot.questions.run_admitted(interaction, self._ask(interaction, question))

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
        expiry = asyncio.create_task(preview.move_before_expiry(EXPIRY_MARGIN_SECONDS))
        try:
            async with self.bot.questions.slots:
                reader = await self.bot.readers.get(scope.collection)
                question, query, answer = await asyncio.to_thread(
                    self._answer, reader.answerer, history, question, publisher.push_threadsafe
                )
        finally:
            await publisher.close()
            if preview.moved:
                await expiry  # the notice is being posted: let it finish
            else:
                expiry.cancel()
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
        saved = await self._save(posted)
        try:
            first = await self._post(preview, answer, posted.id if saved else None, question)
        except Exception:
            await preview.discard()  # an unchecked generated answer must not stay up
            raise
        if isinstance(channel, discord.TextChannel) and saved and not answer.abstained:
            await self._open_thread(channel, first, posted)  # an abstention has nothing to follow

    async def _save(self, posted: PostedAnswer) -> bool:
        """Remember the answer for votes, sources and follow-ups. A data directory that cannot
        take it (read-only, full) costs those, not the answer: it is posted without them."""
        try:
            await asyncio.to_thread(self.bot.feedback.save_answer, posted)
        except CitebotError as error:
            log.warning("answer %s posted without buttons or thread: %s", posted.id, error)
            return False
        return True

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
        self, preview: _Preview, answer: Answer, answer_id: str | None, question: str
    ) -> discord.Message:
        """Send the answer (as many messages as it takes), its first part replacing the
        preview if there is one; the buttons go on the first message (none without a saved
        answer to vote on)."""
        payloads = answer_payloads(answer)
        # An abstention is not an answer to vote on or open sources of: no buttons.
        view = (
            None
            if answer.abstained or answer_id is None
            else answer_view(answer_id, with_sources=bool(answer.citations))
        )
        if preview.moved:
            return await self._post_in_channel(preview.interaction, question, payloads, view)
        first = await preview.replace(payloads[0], view)
        for payload in payloads[1:]:
            await send_followup(preview.interaction, payload)
        return first

    async def _post_in_channel(
        self,
        interaction: discord.Interaction[CitebotBot],
        question: str,
        payloads: list[Payload],
        view: discord.ui.View | None,
    ) -> discord.Message:
        """The answer as channel messages, headed by who asked what: the interaction's token
        has expired (or is about to)."""
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            raise UserFacingError("The answer took too long and this channel takes no messages.")
        heading = late_answer_heading(interaction.user.mention, question)
        first, *rest = with_heading(heading, payloads)
        message = await send_in_channel(channel, first, view=view)
        for payload in rest:
            await send_in_channel(channel, payload)
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


class _Preview:
    """The answer's message through the interaction's token: the "thinking…" placeholder,
    then a generated answer as it is written, then the answer. Shortly before the token
    expires it says the answer will come in the channel (`moved`) and is no longer edited."""

    def __init__(self, interaction: discord.Interaction[CitebotBot]) -> None:
        self.interaction = interaction
        self.message: discord.WebhookMessage | None = None
        self.moved = False
        self._lock = asyncio.Lock()  # the stream, the expiry notice and the answer, in turn

    async def show(self, text: str) -> None:
        """Post or update the message with the answer so far."""
        async with self._lock:
            if not self.moved:
                await self._put(streaming_payload(text))

    async def replace(self, payload: Payload, view: discord.ui.View | None) -> discord.Message:
        """The answer's first part in place of the placeholder or the answer so far."""
        async with self._lock:
            return await self._put(payload, view)

    async def move_before_expiry(self, margin_seconds: float) -> None:
        """Sleep until `margin_seconds` before the token expires, then say where the answer
        will be posted, while the token still works."""
        left = self.interaction.expires_at - discord.utils.utcnow()
        await asyncio.sleep(max(0.0, left.total_seconds() - margin_seconds))
        async with self._lock:
            self.moved = True
            try:
                await self._put(Payload(content=STILL_WORKING))
            except discord.HTTPException as error:
                log.warning("could not say the answer will come in the channel: %s", error)

    async def discard(self) -> None:
        """Delete the answer so far, if one is shown (best effort: the error is what counts)."""
        if self.message is not None and not self.moved:
            with contextlib.suppress(discord.HTTPException):
                await self.message.delete()

    async def _put(
        self, payload: Payload, view: discord.ui.View | None = None
    ) -> discord.WebhookMessage:
        if self.message is None:
            self.message = await send_followup(self.interaction, payload, view=view)
        else:
            self.message = await edit_message(self.message, payload, view=view)
        return self.message


async def setup(bot: CitebotBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Ask(bot))
