"""Showing a text that keeps changing (a generated answer, reindex progress) without flooding
the place it is shown.

Discord allows a few message edits per few seconds, while a model streams tokens and the
indexer reports progress many times a second: `ThrottledPublisher` publishes only the latest
text, at most once per interval, and never two publishes at once. It is the one rate limit of
message edits; it knows nothing of Discord: publishing is any coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("citebot.discord")


class ThrottledPublisher:
    """Publishes the latest text pushed to it, at most once per `interval_seconds`.

    Push from the event loop (`push`) or from a worker thread (`push_threadsafe`); `close`
    waits for a publish in progress and stops, so the caller can then show the final text. A
    failed publish is logged and the stream goes on: the final text is what matters.
    """

    def __init__(
        self,
        publish: Callable[[str], Awaitable[None]],
        interval_seconds: float,
        *,
        what: str = "the answer so far",
    ) -> None:
        """`what` names the text in the log when a publish fails."""
        self._publish = publish
        self._interval_seconds = interval_seconds
        self._what = what
        self._latest = ""
        self._changed = asyncio.Event()
        self._closed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="throttled-publisher")

    def push(self, text: str) -> None:
        """Make `text` the next one to publish (texts pushed meanwhile are skipped)."""
        if not self._closed.is_set():
            self._latest = text
            self._changed.set()

    def push_threadsafe(self, text: str) -> None:
        """`push` from another thread, such as the worker that streams the answer or indexes."""
        self._loop.call_soon_threadsafe(self.push, text)

    async def close(self) -> None:
        """Stop publishing, after the publish in progress if any."""
        self._closed.set()
        self._changed.set()
        await self._task

    async def _run(self) -> None:
        while True:
            await self._changed.wait()
            if self._closed.is_set():
                return
            self._changed.clear()
            try:
                await self._publish(self._latest)
            except Exception:
                log.warning("could not show %s", self._what, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), self._interval_seconds)
