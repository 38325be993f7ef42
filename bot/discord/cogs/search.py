"""/search: the passages that best match a query, with their similarity to it, shown only to the
asker."""

from __future__ import annotations

import asyncio

import discord
from discord import app_commands
from discord.ext import commands

from bot.answer.extractive import clean_question
from bot.discord.bot import CitebotBot, send_followup
from bot.discord.messages import search_payloads
from index.retrieval import Retrieval, Retriever


class Search(commands.Cog):
    """Lets people see what the index holds for a query, without posting to the channel."""

    def __init__(self, bot: CitebotBot) -> None:
        self.bot = bot

    @app_commands.command(name="search", description="Show the passages that best match a query")
    @app_commands.describe(query="Words or a question to look for", results="How many passages")
    @app_commands.guild_only()
    async def search(
        self,
        interaction: discord.Interaction[CitebotBot],
        query: str,
        results: app_commands.Range[int, 1, 10] = 5,
    ) -> None:
        """Defer privately, retrieve in a worker thread, list the passages; like a question,
        a search waits its turn, or is turned away at once when the queue is full."""
        await self.bot.questions.run_admitted(
            interaction, self._search(interaction, query, results)
        )

    async def _search(
        self, interaction: discord.Interaction[CitebotBot], query: str, results: int
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        scope = self.bot.scope_for(interaction.channel)
        async with self.bot.questions.slots:
            reader = await self.bot.readers.get(scope.collection)
            retrieval, passages = await asyncio.to_thread(
                self._retrieve, reader.retriever, query, results
            )
        payloads = search_payloads(
            retrieval.query, retrieval.chunks, retrieval.similarities, passages
        )
        for payload in payloads:
            await send_followup(interaction, payload, ephemeral=True)

    def _retrieve(
        self, retriever: Retriever, query: str, results: int
    ) -> tuple[Retrieval, dict[str, str]]:
        """The best chunks for the query (checked like a question), and the passage of each
        nearest it."""
        cleaned = clean_question(query, self.bot.settings.max_question_chars)
        retrieval = retriever.retrieve(cleaned, results)
        return retrieval, retriever.matching_passages(retrieval)


async def setup(bot: CitebotBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Search(bot))
