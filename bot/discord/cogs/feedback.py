"""The buttons under an answer: Sources (whole quotes, privately) and 👍/👎 votes.

They are `DynamicItem`s: the answer id lives in the custom id (`citebot:sources:<id>`,
`citebot:vote:<id>:up`) and everything else in SQLite, so buttons on messages posted before a
restart keep working.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Self

import discord
from discord.ext import commands

from bot.discord.bot import CitebotBot, UserFacingError, bot_of, report_error, send_followup
from bot.discord.feedback import Verdict
from bot.discord.messages import NO_MENTIONS, sources_payloads

_ANSWER_ID = r"(?P<answer_id>[0-9a-f]{16})"
_VERDICT_EMOJI: dict[str, str] = {"up": "👍", "down": "👎"}


class SourcesButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"citebot:sources:{_ANSWER_ID}"
):
    """Shows an answer's sources with their whole quotes, to the clicker only."""

    def __init__(self, answer_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Sources",
                emoji="📚",
                style=discord.ButtonStyle.secondary,
                custom_id=f"citebot:sources:{answer_id}",
            )
        )
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> Self:
        """The button for a clicked custom id."""
        return cls(match["answer_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Rebuild the sources from the stored answer and send them ephemerally."""
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            posted = await asyncio.to_thread(bot_of(interaction).feedback.answer, self.answer_id)
            if posted is None:
                raise UserFacingError("I no longer have the sources of this answer.")
            for payload in sources_payloads(posted.citations):
                await send_followup(interaction, payload, ephemeral=True)
        except Exception as error:  # buttons have no tree on_error; report like commands do
            await report_error(interaction, error)


class VoteButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=rf"citebot:vote:{_ANSWER_ID}:(?P<verdict>up|down)",
):
    """Stores the clicker's 👍 or 👎 on an answer (a later click replaces it)."""

    def __init__(self, answer_id: str, verdict: Verdict) -> None:
        super().__init__(
            discord.ui.Button(
                emoji=_VERDICT_EMOJI[verdict],
                style=discord.ButtonStyle.secondary,
                custom_id=f"citebot:vote:{answer_id}:{verdict}",
            )
        )
        self.answer_id = answer_id
        self.verdict: Verdict = verdict

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> Self:
        """The button for a clicked custom id."""
        return cls(match["answer_id"], "up" if match["verdict"] == "up" else "down")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Record the vote in SQLite and thank the voter privately."""
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            stored = await asyncio.to_thread(
                bot_of(interaction).feedback.record_vote,
                self.answer_id,
                interaction.user.id,
                self.verdict,
            )
            if not stored:
                raise UserFacingError("This answer is no longer on record; the vote was not kept.")
            await interaction.followup.send(
                f"Thanks for the feedback {_VERDICT_EMOJI[self.verdict]}",
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
        except Exception as error:  # buttons have no tree on_error; report like commands do
            await report_error(interaction, error)


def answer_view(answer_id: str, *, with_sources: bool) -> discord.ui.View:
    """The buttons posted under an answer."""
    view = discord.ui.View(timeout=None)
    if with_sources:
        view.add_item(SourcesButton(answer_id))
    view.add_item(VoteButton(answer_id, "up"))
    view.add_item(VoteButton(answer_id, "down"))
    return view


class Feedback(commands.Cog):
    """Registers the answer buttons, so clicks on any answer, old or new, reach them."""

    def __init__(self, bot: CitebotBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        """Start handling the buttons' custom ids."""
        self.bot.add_dynamic_items(SourcesButton, VoteButton)

    async def cog_unload(self) -> None:
        """Stop handling them."""
        self.bot.remove_dynamic_items(SourcesButton, VoteButton)


async def setup(bot: CitebotBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Feedback(bot))
