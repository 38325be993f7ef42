"""/status: what is indexed for which channels, with which model, and how it answers."""

from __future__ import annotations

import asyncio
from importlib.metadata import version

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.bot import CitebotBot
from bot.discord.messages import NO_MENTIONS, ScopeStatus, status_embed


class Status(commands.Cog):
    """Reports the bot's configuration and each collection's index, privately."""

    def __init__(self, bot: CitebotBot) -> None:
        self.bot = bot

    @app_commands.command(name="status", description="What Citebot has indexed and how it answers")
    @app_commands.guild_only()
    async def status(self, interaction: discord.Interaction[CitebotBot]) -> None:
        """Defer privately, count in a worker thread, reply with one embed."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        scopes = await asyncio.to_thread(self._scope_statuses)
        embed = status_embed(
            version=version("citebot"),
            answer_mode=self.bot.engine.answer_mode,
            retrieval=self.bot.settings.retrieval,
            scopes=scopes,
        )
        await interaction.followup.send(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    def _scope_statuses(self) -> list[ScopeStatus]:
        """Each scope with its channels, index status and last reindex (blocking)."""
        channel_map = self.bot.channel_map
        return [
            ScopeStatus(
                scope=scope,
                channel_ids=channel_map.ids_mapped_to(scope),
                is_default=scope == channel_map.default,
                index=self.bot.engine.status(scope.collection),
                last_reindex=self.bot.feedback.last_reindex(scope.collection),
            )
            for scope in channel_map.scopes()
        ]


async def setup(bot: CitebotBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Status(bot))
