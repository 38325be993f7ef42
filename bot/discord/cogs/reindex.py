"""/reindex (server managers): show what will change, index with live progress, summarise.

It reindexes the invoking channel's scope (its mapped folder and collection, or the default),
one run at a time. Answers keep coming during a run: readers see each article's old version
until the run publishes its new generation, and an index that must be rebuilt (another
embedding model, an older format) is rebuilt beside the live one and switched to when done.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.bot import CitebotBot, UserFacingError, send_followup
from bot.discord.feedback import ReindexRun, now
from bot.discord.messages import (
    NO_MENTIONS,
    READING_ARTICLES,
    Payload,
    notice_text,
    plan_text,
    progress_text,
    reindex_summary_text,
)
from bot.discord.throttle import ThrottledPublisher
from index.indexer import IndexPlan, IndexProgress, IndexReport
from index.store import StoreError

PROGRESS_INTERVAL_SECONDS = 1.5
CANNOT_POST_PROGRESS = (
    "I can't post in this channel, so I can't show the reindex's progress: give me Send "
    "Messages here, or run /reindex in a channel where I can post."
)

log = logging.getLogger("citebot.discord")


class ProgressMessage:
    """Indexing progress in one message, edited through the throttle (at most once per
    `PROGRESS_INTERVAL_SECONDS`), then replaced by the outcome."""

    def __init__(self, message: discord.Message) -> None:
        self._message = message
        self._publisher = ThrottledPublisher(
            self._edit, PROGRESS_INTERVAL_SECONDS, what="reindex progress"
        )

    def report_from_thread(self, progress: IndexProgress) -> None:
        """The indexer's progress callback; safe to call from any thread."""
        self._publisher.push_threadsafe(progress_text(progress))

    async def finish(self, text: str) -> None:
        """Replace the progress with the final text; no progress edit can come after it."""
        await self._publisher.close()
        await self._edit(text)

    async def _edit(self, text: str) -> None:
        await self._message.edit(content=text, allowed_mentions=NO_MENTIONS)


class Reindex(commands.Cog):
    """Reindexes a channel's articles on request, one run at a time."""

    def __init__(self, bot: CitebotBot) -> None:
        self.bot = bot
        self._running = asyncio.Lock()

    @app_commands.command(name="reindex", description="Update the index of this channel's articles")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.checks.has_permissions(manage_guild=True)
    async def reindex(self, interaction: discord.Interaction[CitebotBot]) -> None:
        """Refuse a second run; else index in a worker thread, showing the plan it made, its
        progress and its outcome."""
        if self._running.locked():
            raise UserFacingError("A reindex is already running; try again when it has finished.")
        async with self._running:
            await self._run(interaction)

    async def _run(self, interaction: discord.Interaction[CitebotBot]) -> None:
        await interaction.response.defer(thinking=True)
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            raise UserFacingError("Run /reindex in a text channel or thread.")
        scope = self.bot.scope_for(channel)
        if not await asyncio.to_thread(scope.articles.is_dir):
            raise UserFacingError(f"The articles folder {scope.articles} does not exist.")
        corpus = self.bot.engine.corpus(scope.collection)
        try:
            message = await channel.send(READING_ARTICLES, allowed_mentions=NO_MENTIONS)
        except discord.Forbidden:
            raise UserFacingError(CANNOT_POST_PROGRESS) from None
        progress = ProgressMessage(message)
        loop = asyncio.get_running_loop()
        plan_shown: list[concurrent.futures.Future[object]] = []

        def show_plan(plan: IndexPlan) -> None:
            """`sync` planned (in its worker thread, once, before embedding): post the plan
            as the reply and count progress from it."""
            post = send_followup(interaction, Payload(content=plan_text(scope, plan)))
            plan_shown.append(asyncio.run_coroutine_threadsafe(post, loop))
            progress.report_from_thread(IndexProgress(0, len(plan.to_embed), 0))

        try:
            report: IndexReport = await asyncio.to_thread(
                functools.partial(
                    corpus.sync,
                    [scope.articles],
                    rebuild_if_incompatible=True,
                    on_plan=show_plan,
                    on_progress=progress.report_from_thread,
                )
            )
        except StoreError as error:  # e.g. another process is writing the index
            await progress.finish(notice_text(f"Reindex stopped: {error}"))
            if plan_shown:
                await _plan_posted(plan_shown[0])
            else:  # stopped before planning: the progress message alone says why
                await interaction.delete_original_response()
            return
        except Exception:
            await progress.finish("Reindex failed; the error was logged.")
            raise
        await _plan_posted(plan_shown[0])
        await self.bot.readers.refresh(scope.collection)
        summary = report.summary()
        run = ReindexRun(
            collection=scope.collection,
            finished=now(),
            summary=summary,
            failures=[str(failure.path) for failure in report.failures],
        )
        await asyncio.to_thread(self.bot.feedback.record_reindex, run)
        await progress.finish(reindex_summary_text(scope, summary, report.failures))


async def _plan_posted(post: concurrent.futures.Future[object]) -> None:
    """Wait for the plan's reply. One that failed (the interaction expired during a long run,
    Discord refused it) is logged: the run, its record and its summary do not depend on it."""
    try:
        await asyncio.wrap_future(post)
    except discord.HTTPException as error:
        log.warning("could not post the reindex plan: %s", error)


async def setup(bot: CitebotBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Reindex(bot))
