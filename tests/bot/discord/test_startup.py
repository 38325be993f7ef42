"""Starting and stopping: `citebot bot` errors in one line; SIGTERM closes the bot cleanly."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import pytest

from bot.cli import main
from bot.client import BotStartError, serve
from bot.engine import Engine
from tests.bot.discord.conftest import make_bot
from tests.helpers.fake_discord import FakeDiscord, discord_endpoints


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
