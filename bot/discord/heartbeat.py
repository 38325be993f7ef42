"""The running bot's heartbeat: a file it touches while connected, which `citebot health` checks.

A container health check can then tell a live bot from a wedged or disconnected one without
talking to Discord, and without importing the index (the image checks it every minute).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("citebot.discord")

HEARTBEAT_FILE = "bot.heartbeat"
# How often the bot touches the file, and how old it may be before the bot counts as down: a
# few missed beats, so one slow event-loop turn does not fail the check.
BEAT_SECONDS = 20.0
MAX_AGE_SECONDS = 90.0


def heartbeat_path(data_dir: Path) -> Path:
    """Where the bot of this data directory keeps its heartbeat."""
    return data_dir / HEARTBEAT_FILE


def heartbeat_age(path: Path) -> float | None:
    """Seconds since the last beat, or None when there has been none."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None


async def keep_beating(path: Path, alive: Callable[[], bool], every: float = BEAT_SECONDS) -> None:
    """Touch `path` every `every` seconds while `alive()` says so; runs until cancelled.

    Beats come from the event loop itself, so a blocked loop stops them too.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        if alive():
            try:
                path.touch()
            except OSError as error:
                log.warning("cannot write the heartbeat %s: %s", path, error)
        await asyncio.sleep(every)
