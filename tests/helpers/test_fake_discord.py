"""Smoke tests of the fake Discord against the real discord.py client.

These are the alarm for discord.py upgrades: when the library changes its wire format or the
internals the fake relies on (``Route.BASE``, ``DiscordWebSocket.DEFAULT_GATEWAY``, gateway
payload parsing, interaction callback parsing), these fail before every bot test does.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.helpers.fake_discord import (
    BUTTON,
    DEFERRED_CHANNEL_MESSAGE,
    EPHEMERAL,
    LOADING,
    MESSAGE_COMPONENT,
    FakeDiscord,
    running_bot,
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """A started fake Discord, stopped after the test."""
    async with FakeDiscord() as server:
        yield server


def make_bot(**options: object) -> commands.Bot:
    """A real bot with default intents that becomes ready quickly."""
    return commands.Bot(
        command_prefix=commands.when_mentioned,
        intents=discord.Intents.default(),
        guild_ready_timeout=0.1,
        **options,
    )


def add_deferred_ping(bot: commands.Bot, guild_id: int) -> None:
    """A guild command that defers, then answers with a followup."""

    @bot.tree.command(name="ping", description="Reply with pong.", guild=discord.Object(guild_id))
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send("pong <@1> @everyone")


class FeedbackView(discord.ui.View):
    """A persistent view: no timeout and a fixed custom_id, so clicks survive restarts."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Helpful", custom_id="feedback:helpful")
    async def helpful(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.send_message("Thanks for the feedback!", ephemeral=True)


def capture_tree_errors(bot: commands.Bot) -> asyncio.Future[app_commands.AppCommandError]:
    """A future resolved with the first error the bot's command tree reports."""
    errors: asyncio.Future[app_commands.AppCommandError] = asyncio.Future()

    @bot.tree.error
    async def on_error(
        interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        errors.set_result(error)

    return errors


async def test_discord_py_logs_in_reaches_ready_and_answers_deferred_slash_command(
    fake: FakeDiscord,
) -> None:
    bot = make_bot()
    add_deferred_ping(bot, fake.guild_id)
    async with running_bot(fake, bot):
        assert bot.user is not None
        assert bot.user.id == fake.bot_user.id
        guild = bot.get_guild(fake.guild_id)
        assert guild is not None
        assert guild.me is not None
        assert guild.get_channel(fake.channel_id) is not None
        identify = next(m for m in fake.gateway_messages if m["op"] == 2)
        assert identify["d"]["intents"] == bot.intents.value

        await bot.tree.sync(guild=discord.Object(fake.guild_id))
        interaction = await fake.send_slash_command("ping")
        await fake.wait_for_request(
            lambda r: r.method == "POST" and r.path == interaction.webhook_path
        )

    callback, followup = fake.requests_for(interaction)
    assert callback.path == interaction.callback_path
    assert callback.status == 200  # within the deadline
    assert callback.json["type"] == DEFERRED_CHANNEL_MESSAGE
    assert callback.response["resource"]["message"]["flags"] & LOADING
    assert followup.status == 200
    assert followup.json["content"] == "pong <@1> @everyone"
    [answer] = fake.messages_for(interaction)
    assert answer["content"] == "pong <@1> @everyone"
    assert answer["flags"] == 0  # the first followup replaced the "thinking" message


async def test_late_interaction_response_is_rejected_as_unknown_interaction(
    fake: FakeDiscord,
) -> None:
    bot = make_bot()
    errors = capture_tree_errors(bot)

    @bot.tree.command(
        name="slow", description="Answer too late.", guild=discord.Object(fake.guild_id)
    )
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(3.5)
        await interaction.response.send_message("too late")

    async with running_bot(fake, bot):
        await bot.tree.sync(guild=discord.Object(fake.guild_id))
        await fake.send_slash_command("slow")
        error = await asyncio.wait_for(errors, timeout=4.5)

    assert isinstance(error, app_commands.CommandInvokeError)
    assert isinstance(error.original, discord.NotFound)
    assert error.original.code == 10062


async def test_an_interaction_token_expires_for_discord_py_as_on_discord(
    fake: FakeDiscord,
) -> None:
    bot = make_bot()
    errors = capture_tree_errors(bot)
    expiry: list[bool] = []

    @bot.tree.command(
        name="late", description="Answer after the token.", guild=discord.Object(fake.guild_id)
    )
    async def late(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        expiry.append(interaction.is_expired())
        await asyncio.sleep(1.2)
        expiry.append(interaction.is_expired())
        await interaction.followup.send("too late")

    async with running_bot(fake, bot):
        await bot.tree.sync(guild=discord.Object(fake.guild_id))
        await fake.send_slash_command("late", token_seconds_left=1.0)
        error = await asyncio.wait_for(errors, timeout=5)

    assert expiry == [False, True]  # discord.py reads the expiry from the interaction's id
    assert isinstance(error, app_commands.CommandInvokeError)
    assert isinstance(error.original, discord.HTTPException)
    assert (error.original.status, error.original.code) == (401, 50027)


async def test_bot_allowed_mentions_reach_the_followup_payload(fake: FakeDiscord) -> None:
    bot = make_bot(allowed_mentions=discord.AllowedMentions.none())
    add_deferred_ping(bot, fake.guild_id)
    async with running_bot(fake, bot):
        await bot.tree.sync(guild=discord.Object(fake.guild_id))
        interaction = await fake.send_slash_command("ping")
        followup = await fake.wait_for_request(
            lambda r: r.method == "POST" and r.path == interaction.webhook_path
        )
    assert followup.json["allowed_mentions"] == {"parse": []}


async def test_button_click_on_persistent_view_is_a_component_interaction(
    fake: FakeDiscord,
) -> None:
    bot = make_bot()
    bot.add_view(FeedbackView())

    @bot.tree.command(name="ask", description="Answer with feedback buttons.")
    @app_commands.guild_only()
    async def ask(interaction: discord.Interaction, question: str) -> None:
        await interaction.response.send_message(f"About {question}: 42", view=FeedbackView())

    async with running_bot(fake, bot):
        await bot.tree.sync()
        asked = await fake.send_slash_command("ask", {"question": "life"})
        await fake.wait_for_request(lambda r: r.path == asked.callback_path)
        [answer] = fake.messages_for(asked)
        assert answer["content"] == "About life: 42"

        click = await fake.click_button(answer, "feedback:helpful", user=fake.admin_user)
        callback = await fake.wait_for_request(lambda r: r.path == click.callback_path)

    assert click.payload["type"] == MESSAGE_COMPONENT
    assert click.payload["data"] == {"custom_id": "feedback:helpful", "component_type": BUTTON}
    assert callback.status == 200
    [thanks] = fake.messages_for(click)
    assert thanks["content"] == "Thanks for the feedback!"
    assert thanks["flags"] & EPHEMERAL


async def test_default_member_permissions_decide_who_may_invoke(fake: FakeDiscord) -> None:
    bot = make_bot()

    @bot.tree.command(
        name="reindex", description="Rebuild the index.", guild=discord.Object(fake.guild_id)
    )
    @app_commands.default_permissions(manage_guild=True)
    async def reindex(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Reindexing.", ephemeral=True)
        await interaction.delete_original_response()

    async with running_bot(fake, bot):
        await bot.tree.sync(guild=discord.Object(fake.guild_id))
        with pytest.raises(PermissionError):
            await fake.send_slash_command("reindex", user=fake.member_user)
        interaction = await fake.send_slash_command("reindex", user=fake.admin_user)
        delete = await fake.wait_for_request(lambda r: r.method == "DELETE")

    assert interaction.payload["member"]["permissions"] == str(fake.admin_user.permissions)
    assert [r.status for r in fake.requests_for(interaction)] == [200, 204]
    assert delete.path == f"{interaction.webhook_path}/messages/@original"
    assert fake.messages_for(interaction) == []


async def test_threads_channel_messages_and_attachments(fake: FakeDiscord) -> None:
    bot = make_bot()

    @bot.tree.command(
        name="discuss", description="Open threads.", guild=discord.Object(fake.guild_id)
    )
    async def discuss(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Let's discuss.")
        message = await interaction.original_response()
        thread = await message.create_thread(name="Discussion")
        notes = discord.File(io.BytesIO(b"notes"), "notes.txt")
        sources = await thread.send("Sources attached.", file=notes)
        await sources.edit(content="Sources attached (1 file).")
        assert isinstance(interaction.channel, discord.TextChannel)
        await interaction.channel.create_thread(
            name="Side topic", type=discord.ChannelType.public_thread
        )
        await message.edit(content="Discussion opened.")

    def thread_named(name: str) -> asyncio.Task[discord.Thread]:
        return asyncio.create_task(
            bot.wait_for("thread_create", check=lambda t: t.name == name, timeout=3)
        )

    async with running_bot(fake, bot):
        await bot.tree.sync(guild=discord.Object(fake.guild_id))
        discussion, side_topic = thread_named("Discussion"), thread_named("Side topic")
        interaction = await fake.send_slash_command("discuss", user=fake.admin_user)
        thread, other = await discussion, await side_topic
        upload = await fake.wait_for_request(lambda r: r.path == f"/channels/{thread.id}/messages")
        await fake.wait_for_request(
            lambda r: r.method == "PATCH" and r.path.startswith(interaction.webhook_path)
        )

    [original] = fake.messages_for(interaction)
    assert original["content"] == "Discussion opened."
    assert thread.id == int(original["id"])  # a thread started from a message shares its id
    assert thread.parent_id == other.parent_id == fake.channel_id
    assert upload.files == {"notes.txt": b"notes"}
    [posted] = fake.messages_in(thread.id)
    assert posted["content"] == "Sources attached (1 file)."
    assert posted["attachments"][0]["filename"] == "notes.txt"


async def test_sharded_bot_with_members_intent_reaches_ready(fake: FakeDiscord) -> None:
    intents = discord.Intents.default()
    intents.members = True
    bot = commands.AutoShardedBot(
        command_prefix=commands.when_mentioned, intents=intents, guild_ready_timeout=0.1
    )
    async with running_bot(fake, bot):
        guild = bot.get_guild(fake.guild_id)
        assert guild is not None
        assert guild.chunked
        assert guild.get_member(fake.member_user.id) is not None
    assert any(r.path == "/gateway/bot" for r in fake.requests)
    assert any(m["op"] == 8 for m in fake.gateway_messages)


async def test_running_bot_raises_when_the_client_dies_on_a_bad_payload(fake: FakeDiscord) -> None:
    bot = make_bot()

    async def run_until_crash() -> None:
        async with running_bot(fake, bot):
            await fake.dispatch("GUILD_CREATE", {"unavailable": False})
            await asyncio.sleep(0.1)

    with pytest.raises(KeyError, match="id"):
        await run_until_crash()
    assert bot.is_closed()


async def test_running_bot_reports_unserved_calls_and_unsynced_commands(fake: FakeDiscord) -> None:
    bot = make_bot()

    async def call_unknown_route() -> None:
        async with running_bot(fake, bot):
            with pytest.raises(LookupError, match="not synced"):
                await fake.send_slash_command("nope")
            with pytest.raises(discord.NotFound):
                await bot.fetch_guild_preview(fake.guild_id)

    with pytest.raises(AssertionError, match=f"GET /guilds/{fake.guild_id}/preview"):
        await call_unknown_route()


async def test_message_bodies_over_discord_limits_are_rejected(fake: FakeDiscord) -> None:
    bot = make_bot()

    @bot.tree.command(name="long", description="Too long.", guild=discord.Object(fake.guild_id))
    async def long(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("x" * 2001)

    errors = capture_tree_errors(bot)

    async with running_bot(fake, bot):
        await bot.tree.sync(guild=discord.Object(fake.guild_id))
        await fake.send_slash_command("long")
        error = await asyncio.wait_for(errors, timeout=5)

    assert isinstance(error, app_commands.CommandInvokeError)
    assert isinstance(error.original, discord.HTTPException)
    assert error.original.code == 50035
    assert "content has 2001 characters (limit 2000)" in error.original.text


async def test_added_channels_and_categories_reach_the_bot(fake: FakeDiscord) -> None:
    before = await fake.add_text_channel("before-login")
    bot = make_bot()
    async with running_bot(fake, bot):
        category = await fake.add_category("Team")
        created = asyncio.create_task(
            bot.wait_for("guild_channel_create", check=lambda c: c.name == "after-login", timeout=3)
        )
        after = await fake.add_text_channel("after-login", category_id=category)
        channel = await created
        guild = bot.get_guild(fake.guild_id)
        assert guild is not None
        assert isinstance(guild.get_channel(before), discord.TextChannel)
        assert isinstance(guild.get_channel(category), discord.CategoryChannel)

    assert channel.id == after
    assert isinstance(channel, discord.TextChannel)
    assert channel.category_id == category


async def test_a_server_override_lets_a_member_send_a_restricted_command(
    fake: FakeDiscord,
) -> None:
    bot = make_bot()
    invoked: asyncio.Future[int] = asyncio.Future()

    @bot.tree.command(name="admin", description="Admins.", guild=discord.Object(fake.guild_id))
    @app_commands.default_permissions(manage_guild=True)
    async def admin(interaction: discord.Interaction) -> None:
        invoked.set_result(interaction.user.id)
        await interaction.response.send_message("ok", ephemeral=True)

    async with running_bot(fake, bot):
        await bot.tree.sync(guild=discord.Object(fake.guild_id))
        with pytest.raises(PermissionError):
            await fake.send_slash_command("admin")
        await fake.send_slash_command("admin", bypass_default_permissions=True)
        assert await asyncio.wait_for(invoked, timeout=3) == fake.member_user.id
