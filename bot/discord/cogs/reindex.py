"""/reindex (server managers): show what will change, index with live progress, summarise.

It reindexes the invoking channel's scope (its mapped folder and collection, or the default),
one run at a time. Answers keep coming during a run: readers see each article's old version
until the run publishes its new generation, and an index that must be rebuilt (another
embedding model, an older format) is rebuilt beside the live one and switched to when done.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import math

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.bot import CitebotBot, UserFacingError, send_followup
from bot.discord.feedback import ReindexRun, now
from bot.discord.messages import (
    NO_MENTIONS,
    Payload,
    plan_text,
    progress_text,
    reindex_summary_text,
)
from index.indexer import IndexProgress, IndexReport
from index.store import StoreError

log = logging.getLogger("citebot.discord")

PROGRESS_INTERVAL_SECONDS = 1.5


class ProgressReporter:
    """Shows indexing progress in one message, edited at most once per interval.

    The indexer reports from its worker thread; each report is handed to the event loop with
    `call_soon_threadsafe`, and only the latest one is shown when an edit is due.
    """

    def __init__(
        self, message: discord.Message, interval: float = PROGRESS_INTERVAL_SECONDS
    ) -> None:
        self._message = message
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._latest: IndexProgress | None = None
        self._last_edit = -math.inf
        self._pending: asyncio.Task[None] | None = None
        self._edit_lock = asyncio.Lock()
        self._finished = False

    def report_from_thread(self, progress: IndexProgress) -> None:
        """The indexer's progress callback; safe to call from any thread."""
        self._loop.call_soon_threadsafe(self._report, dataclasses.replace(progress))

    def _report(self, progress: IndexProgress) -> None:
        self._latest = progress
        if self._pending is None or self._pending.done():
            self._pending = self._loop.create_task(self._edit_when_due())

    async def _edit_when_due(self) -> None:
        await asyncio.sleep(max(0.0, self._last_edit + self._interval - self._loop.time()))
        async with self._edit_lock:
            if self._finished or self._latest is None:
                return
            self._last_edit = self._loop.time()
            try:
                await self._message.edit(
                    content=progress_text(self._latest), allowed_mentions=NO_MENTIONS
                )
            except discord.HTTPException as error:
                log.warning("could not update reindex progress: %s", error)

    async def finish(self, text: str) -> None:
        """Replace the progress with the final text; no progress edit can come after it."""
        self._finished = True
        async with self._edit_lock:
            if self._pending is not None:
                self._pending.cancel()
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
        """Refuse a second run; else plan, index in a worker thread and report."""
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
        plan = await asyncio.to_thread(corpus.plan, [scope.articles])
        await send_followup(interaction, Payload(content=plan_text(scope, plan)))
        start = IndexProgress(0, len(plan.to_embed), 0)
        message = await channel.send(progress_text(start), allowed_mentions=NO_MENTIONS)
        progress = ProgressReporter(message)
        try:
            report: IndexReport = await asyncio.to_thread(
                functools.partial(
                    corpus.sync,
                    [scope.articles],
                    rebuild_if_incompatible=True,
                    on_progress=progress.report_from_thread,
                )
            )
        except StoreError as error:  # e.g. another process is writing the index
            await progress.finish(f"Reindex stopped: {error}")
            return
        except Exception:
            await progress.finish("Reindex failed; the error was logged.")
            raise
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


async def setup(bot: CitebotBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Reindex(bot))
