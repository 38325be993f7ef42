"""The Discord bot: one `commands.Bot` sharing the answer engine, with a cog per feature.

Layout as in discord.py's examples and RoboDanny: the bot owns the shared state (engine,
channel map, SQLite store, one reader per collection) and loads `bot/discord/cogs/*` in
`setup_hook`; errors of every command are reported once, from the command tree's `on_error`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import signal
from collections import defaultdict
from collections.abc import Coroutine
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.answer.engine import Engine
from bot.answer.pipeline import AnswerPipeline
from bot.discord import heartbeat
from bot.discord.channels import ChannelMap, Scope
from bot.discord.feedback import FEEDBACK_FILE, FeedbackStore
from bot.discord.messages import BUSY, NO_MENTIONS, Payload, notice_text
from bot.errors import BotStartError, CitebotError
from bot.settings import Settings
from index.redaction import install_log_redaction
from index.retrieval import Retriever

log = logging.getLogger("citebot.discord")

UNKNOWN_INTERACTION = 10062  # Discord's error code for an interaction acknowledged too late
# Connections to Discord at most, kept alive. discord.py's default has no limit: a burst of 200
# interactions opens 200 (each a TLS handshake on the event loop), and their acknowledgements
# advance together and arrive together, all late once the loop is slow; a pool answers them
# in turn, the first at once. One of them is the gateway's.
DISCORD_CONNECTIONS = 16

EXTENSIONS = (
    "bot.discord.cogs.ask",
    "bot.discord.cogs.search",
    "bot.discord.cogs.reindex",
    "bot.discord.cogs.status",
    "bot.discord.cogs.feedback",
)


class UserFacingError(app_commands.AppCommandError):
    """A problem the user can act on; its message is shown to them as it is."""


@dataclass(frozen=True)
class Reader:
    """What reads one collection at one generation: its retriever (/search) and an answerer
    over it (/ask)."""

    retriever: Retriever
    answerer: AnswerPipeline
    version: tuple[int, int]  # the generation it read, and the Chroma client it read it with


class ReaderCache:
    """One reader per collection, built off the event loop, rebuilt when the index changed.

    Before each question the collection's generation is read from Chroma (one `get` by id): a
    reindex by this bot, by `citebot index` or by another host moves it, and the next answer
    uses the new chunks and BM25; so does a reopened client (after a fault of the embedded
    store's files, or files replaced under it). A store that is down or damaged raises its
    user-facing error for this question only; the next one tries again.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._readers: dict[str, Reader] = {}
        self._building: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def get(self, collection: str) -> Reader:
        """The collection's current reader; raises the store's user-facing errors if it
        cannot be read."""
        corpus = self._engine.corpus(collection)
        generation = await asyncio.to_thread(corpus.generation)
        seen = self._readers.get(collection)
        if seen is not None and seen.version == (generation, self._engine.connection.openings):
            return seen
        async with self._building[collection]:  # questions arriving together build it once
            reader = self._readers.get(collection)
            if reader is None or reader is seen:  # not rebuilt while this one waited
                reader = await asyncio.to_thread(self._build, collection)
                self._readers[collection] = reader
        return reader

    async def refresh(self, collection: str) -> None:
        """Build the collection's reader now (at start, after a reindex), so the next question
        is quick; a collection that cannot be read is logged, and each question reports it."""
        try:
            await self.get(collection)
        except CitebotError as error:
            log.warning("collection %s cannot be read: %s", collection, error)

    def _build(self, collection: str) -> Reader:
        """A reader whose first retrieval has been made, so no question pays for loading it."""
        corpus = self._engine.corpus(collection)
        generation = corpus.generation()
        retriever = self._engine.retriever(corpus)
        responder = self._engine.responder(retriever)
        responder.warm_up()
        version = (generation, self._engine.connection.openings)
        return Reader(retriever, responder, version)


class CitebotTree(app_commands.CommandTree["CitebotBot"]):
    """The command tree; its `on_error` is the one place command errors are reported."""

    async def on_error(
        self, interaction: discord.Interaction[CitebotBot], error: app_commands.AppCommandError
    ) -> None:
        """Tell the user briefly and privately; only the log gets a traceback."""
        await report_error(interaction, error)


class CitebotBot(commands.Bot):
    """Citebot on Discord: slash commands over the engine, mentions disabled everywhere."""

    def __init__(
        self,
        engine: Engine,
        channel_map: ChannelMap,
        *,
        sync: bool = False,
        sync_guild_id: int | None = None,
        **client_options: Any,
    ) -> None:
        """`sync`: register the commands at start (in `sync_guild_id` only, if given);
        `client_options` go to discord.py's client (tests shorten `guild_ready_timeout`)."""
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents(guilds=True),  # channels and threads; nothing privileged
            allowed_mentions=NO_MENTIONS,
            tree_cls=CitebotTree,
            help_command=None,
            **client_options,
        )
        self.engine = engine
        self.channel_map = channel_map
        self.readers = ReaderCache(engine)
        self.feedback = FeedbackStore(engine.settings.data_dir / FEEDBACK_FILE)
        self.questions = QuestionQueue(
            engine.settings.max_concurrent_questions, engine.settings.max_queued_questions
        )
        self._sync = sync
        self._sync_guild_id = sync_guild_id

    @property
    def settings(self) -> Settings:
        """The engine's settings."""
        return self.engine.settings

    async def login(self, token: str) -> None:
        """Log in, over a pool of `DISCORD_CONNECTIONS` (made here: it needs the running loop)."""
        self.http.connector = aiohttp.TCPConnector(limit=DISCORD_CONNECTIONS)
        await super().login(token)

    async def setup_hook(self) -> None:
        """Before connecting: load the embedder, open the stores and build every scope's reader
        once (a burst of questions right after start must not wait on first-use loads), load
        the cogs, keep the garbage collector off what was loaded, and register the commands
        with Discord only when asked to; from here on no log line holds a configured secret."""
        install_log_redaction(self.settings.secrets())
        await asyncio.to_thread(self._load_engine)
        await asyncio.to_thread(self.feedback.create)
        for scope in self.channel_map.scopes():
            await self.readers.refresh(scope.collection)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        _freeze_loaded_objects()
        if self._sync:
            await self.sync_commands()

    def _load_engine(self) -> None:
        """The embedder and the Chroma client, created once here rather than by two threads."""
        log.info("embedding model: %s", self.engine.embedder.identity)
        log.info("index: %s", self.engine.connection.where)
        log.info("answers: %s", self.engine.answer_mode)

    async def sync_commands(self) -> None:
        """Register the slash commands globally, or in one server (instant, for testing)."""
        if self._sync_guild_id is None:
            synced = await self.tree.sync()
            log.info("synced %d commands globally", len(synced))
            return
        guild = discord.Object(self._sync_guild_id)
        self.tree.copy_global_to(guild=guild)
        synced = await self.tree.sync(guild=guild)
        log.info("synced %d commands to server %d", len(synced), self._sync_guild_id)

    def scope_for(self, channel: object) -> Scope:
        """The scope of an interaction's channel: a thread follows its parent channel."""
        if isinstance(channel, discord.Thread):
            category_id = getattr(channel.parent, "category_id", None)
            return self.channel_map.scope_for(channel.parent_id, category_id)
        return self.channel_map.scope_for(
            getattr(channel, "id", None), getattr(channel, "category_id", None)
        )


def _freeze_loaded_objects() -> None:
    """Exempt what start-up loaded (models, jieba's and pypinyin's dictionaries, BM25 and alias
    tables: some 300 000 objects that live as long as the bot) from the garbage collector's
    full passes, which otherwise walk them all and hold the event loop for 0.3-1.5 s each
    under a burst of questions; garbage is collected first, so none of it is kept."""
    gc.collect()
    gc.freeze()


class QuestionQueue:
    """Questions and searches being answered (at most `concurrent` at once, each holding one of
    `slots`) or waiting for a slot (at most `queued`). Beyond that one would wait minutes, and
    is better turned away at once."""

    def __init__(self, concurrent: int, queued: int) -> None:
        self.slots = asyncio.Semaphore(concurrent)
        self.limit = concurrent + queued
        self.admitted = 0

    async def run_admitted(
        self, interaction: discord.Interaction[Any], work: Coroutine[Any, Any, None]
    ) -> None:
        """Run `work` holding a place in the queue, or, when it is full, tell the user so
        privately at once (and close `work` unrun)."""
        if self.admitted >= self.limit:
            work.close()
            await send_ephemeral(interaction, BUSY)
            return
        self.admitted += 1
        try:
            await work
        finally:
            self.admitted -= 1


def bot_of(interaction: discord.Interaction[Any]) -> CitebotBot:
    """The bot behind an interaction (for checks and buttons, which get no cog)."""
    return cast(CitebotBot, interaction.client)


async def send_followup(
    interaction: discord.Interaction[Any],
    payload: Payload,
    *,
    ephemeral: bool = False,
    view: discord.ui.View | None = None,
) -> discord.WebhookMessage:
    """Send one payload as a followup, with mentions disabled; returns the message."""
    extra: dict[str, Any] = {"view": view} if view is not None else {}
    return await interaction.followup.send(
        content=payload.content,  # type: ignore[arg-type]  # None: no content, embeds only
        embeds=list(payload.embeds),
        ephemeral=ephemeral,
        allowed_mentions=NO_MENTIONS,
        wait=True,
        **extra,
    )


async def send_in_channel(
    channel: discord.abc.Messageable, payload: Payload, *, view: discord.ui.View | None = None
) -> discord.Message:
    """Send one payload as a channel message, with mentions disabled."""
    extra: dict[str, Any] = {"view": view} if view is not None else {}
    return await channel.send(
        content=payload.content,
        embeds=list(payload.embeds),
        allowed_mentions=NO_MENTIONS,
        **extra,
    )


async def edit_message(
    message: discord.WebhookMessage, payload: Payload, *, view: discord.ui.View | None = None
) -> discord.WebhookMessage:
    """Replace a followup's content and embeds with a payload, mentions disabled."""
    extra: dict[str, Any] = {"view": view} if view is not None else {}
    return await message.edit(
        content=payload.content,
        embeds=list(payload.embeds),
        allowed_mentions=NO_MENTIONS,
        **extra,
    )


async def send_ephemeral(interaction: discord.Interaction[Any], text: str) -> None:
    """Answer only the user, whatever state the interaction is in, with `text` as a notice
    (see `notice_text`).

    A public "thinking…" placeholder is deleted first: a followup would replace it and be
    public, and the user would see two messages.
    """
    text = notice_text(text)
    response = interaction.response
    if not response.is_done():
        await response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        return
    if response.type is discord.InteractionResponseType.deferred_channel_message:
        try:
            original = await interaction.original_response()
        except discord.NotFound:  # deleted already (an unfinished answer taken back)
            original = None
        if original is not None and original.flags.loading and not original.flags.ephemeral:
            await interaction.delete_original_response()
    await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


async def report_error(interaction: discord.Interaction[Any], error: Exception) -> None:
    """Show the user a short message for an error; log a traceback for unexpected ones."""
    cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(cause, discord.NotFound) and cause.code == UNKNOWN_INTERACTION:
        # Too late to answer, and to say so: one line, no traceback, under load least of all.
        log.warning("interaction %s expired before it was acknowledged", interaction.id)
        return
    if isinstance(cause, CitebotError | UserFacingError):
        text = str(cause)
    elif isinstance(cause, app_commands.CommandOnCooldown):
        text = f"You're asking quickly: try again in {math.ceil(cause.retry_after)} s."
    elif isinstance(cause, app_commands.MissingPermissions):
        text = "Only members who can manage this server may use this command."
    elif isinstance(cause, app_commands.CheckFailure):
        text = "You can't use this command here."
    elif isinstance(cause, discord.DiscordServerError):
        # Discord's own outage (discord.py has already retried what it retries): one line, no
        # traceback, and the user is told to ask again should the next call get through.
        log.warning("Discord failed in %s: %s", _where(interaction), cause)
        text = "Discord could not take my reply just now; please try again in a moment."
    else:
        log.error("error in %s", _where(interaction), exc_info=cause)
        text = "Something went wrong on my side; the error was logged."
    try:
        await send_ephemeral(interaction, text)
    except discord.NotFound as failure:
        if failure.code != UNKNOWN_INTERACTION:
            raise
        log.warning("interaction %s expired before the user was told: %s", interaction.id, text)
    except discord.HTTPException:
        log.warning("could not tell the user about an error", exc_info=True)


def _where(interaction: discord.Interaction[Any]) -> str:
    """The command (or a button) an interaction is for, for the log."""
    return interaction.command.qualified_name if interaction.command else "a button"


def run_bot(engine: Engine, *, sync: bool = False, guild_id: int | None = None) -> int:
    """Run the bot until SIGINT or SIGTERM; returns the exit code."""
    token = engine.settings.discord_token
    if token is None or not token.get_secret_value().strip():
        raise BotStartError("DISCORD_TOKEN is not set (in the environment or .env)")
    if guild_id is not None and not sync:
        raise BotStartError("--guild only applies with --sync")
    settings = engine.settings
    channel_map = ChannelMap.load(
        settings.channels_file, Scope(settings.articles_dir, settings.collection)
    )
    logging.getLogger("discord.client").addFilter(_without_voice_warnings)
    bot = CitebotBot(engine, channel_map, sync=sync, sync_guild_id=guild_id)
    asyncio.run(serve(bot, token.get_secret_value()))
    return 0


def _without_voice_warnings(record: logging.LogRecord) -> bool:
    """Drop discord.py's "PyNaCl/davey is not installed" warnings: Citebot never uses voice."""
    return "voice will NOT be supported" not in record.getMessage()


async def serve(bot: CitebotBot, token: str) -> None:
    """Log in, connect and run until a signal closes the bot, keeping its heartbeat while it is
    connected. A rejected token or an unreachable Discord at start is one `BotStartError`; once
    connected, discord.py reconnects by itself."""
    loop = asyncio.get_running_loop()
    closing: list[asyncio.Task[None]] = []

    def close() -> None:
        """The signal handler: close the connection (and so end `bot.start`)."""
        log.info("closing")
        closing.append(loop.create_task(bot.close()))

    def connected() -> bool:
        return bot.is_ready() and not bot.is_closed() and bot.ws is not None and bot.ws.open

    signals = (signal.SIGINT, signal.SIGTERM)
    for signal_number in signals:
        loop.add_signal_handler(signal_number, close)
    beats = heartbeat.heartbeat_path(bot.settings.data_dir)
    beating = loop.create_task(heartbeat.keep_beating(beats, connected, heartbeat.BEAT_SECONDS))
    try:
        async with bot:
            await bot.start(token)
    except discord.LoginFailure:
        raise BotStartError("Discord rejected DISCORD_TOKEN: check the bot token") from None
    except (aiohttp.ClientConnectionError, discord.DiscordServerError) as error:
        reason = " ".join(str(error).split())
        raise BotStartError(f"cannot reach Discord ({reason}); check the network") from None
    finally:
        beating.cancel()
        with suppress(OSError):  # a read-only data directory: the start error says so
            beats.unlink(missing_ok=True)  # a stopped bot is not a healthy one
        for signal_number in signals:
            loop.remove_signal_handler(signal_number)
        await asyncio.gather(*closing)
