"""Many `/ask` at once through the fake Discord, and what became of each: how fast it was
acknowledged, whether it was answered, politely turned away or lost, and how late the event
loop ran meanwhile. Shared by the load test and `bench/load.py`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.helpers.fake_discord import (
    EPHEMERAL,
    EVERYONE_PERMISSIONS,
    LOADING,
    FakeDiscord,
    FakeInteraction,
    FakeUser,
    RecordedRequest,
)

ANSWERED, RATE_LIMITED, LOST = "answered", "rate-limited", "lost"


@dataclass
class LoadResult:
    """What happened to each interaction, and the loop's lag samples (milliseconds)."""

    outcomes: list[str]
    ack_seconds: list[float | None]  # None: never acknowledged
    lag_ms: list[float]  # throughout
    answering_lag_ms: list[float]  # once every interaction was acknowledged: while answering
    seconds: float
    replies: dict[str, list[str]] = field(default_factory=dict)  # outcome -> texts shown

    def count(self, outcome: str) -> int:
        """How many interactions ended so."""
        return self.outcomes.count(outcome)

    @property
    def acked_in_time(self) -> int:
        """Interactions acknowledged within Discord's 3 s."""
        return sum(1 for s in self.ack_seconds if s is not None and s <= 3.0)

    def lag(self, quantile: float, *, answering: bool = False) -> float:
        """A quantile (0-1) of the loop's lag in ms, throughout or only while answering."""
        return _quantile(self.answering_lag_ms if answering else self.lag_ms, quantile)

    def ack(self, quantile: float) -> float:
        """A quantile (0-1) of the acknowledgement latency in seconds, of those acknowledged."""
        return _quantile([s for s in self.ack_seconds if s is not None], quantile)

    def summary(self) -> str:
        """The figures, one line each."""
        return "\n".join(
            [
                f"asked: {len(self.outcomes)} in {self.seconds:.1f} s",
                f"acknowledged within 3 s: {self.acked_in_time} (latency s: p50 "
                f"{self.ack(0.5):.2f}, p99 {self.ack(0.99):.2f}, max {self.ack(1.0):.2f})",
                f"answered: {self.count(ANSWERED)}",
                f"rate-limited: {self.count(RATE_LIMITED)}",
                f"lost: {self.count(LOST)}",
                f"loop lag ms, throughout: p50 {self.lag(0.5):.1f}, p99 {self.lag(0.99):.1f}, "
                f"max {self.lag(1.0):.1f} ({len(self.lag_ms)} samples)",
                f"loop lag ms, while answering: p50 {self.lag(0.5, answering=True):.1f}, "
                f"p99 {self.lag(0.99, answering=True):.1f}, "
                f"max {self.lag(1.0, answering=True):.1f} "
                f"({len(self.answering_lag_ms)} samples)",
            ]
        )


def _quantile(values: Sequence[float], quantile: float) -> float:
    """The value below which `quantile` (0-1) of `values` lie; 0 without values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] if ordered else 0.0


@asynccontextmanager
async def loop_lag(
    samples: list[tuple[float, float]], interval: float = 0.01
) -> AsyncIterator[None]:
    """Sample how late an `interval`-second sleep wakes up, meanwhile: (loop time, ms late)."""
    loop = asyncio.get_running_loop()

    async def probe() -> None:
        while True:
            started = loop.time()
            await asyncio.sleep(interval)
            woke = loop.time()
            samples.append((woke, max(0.0, (woke - started - interval) * 1000)))

    task = asyncio.create_task(probe(), name="loop-lag-probe")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


_TOPICS = (
    "When will the northern section of the Taipei metro circular line open",
    "Where do bubble tea shops in Europe import their tapioca pearls from",
    "Which counties closed offices and schools before the typhoon",
    "How many stations does the new metro section have",
)


def load_questions(count: int) -> list[str]:
    """`count` distinct questions about the test articles (none embedded twice)."""
    return [f"{_TOPICS[i % len(_TOPICS)]}? (question {i})" for i in range(count)]


def users(count: int) -> list[FakeUser]:
    """`count` distinct guild members."""
    return [
        FakeUser(2_000_000_000_000_000_000 + i, f"member-{i}", EVERYONE_PERMISSIONS)
        for i in range(count)
    ]


async def ask_at_once(
    fake: FakeDiscord,
    askers: Sequence[FakeUser],
    questions: Sequence[str],
    *,
    burst: bool = False,
    timeout: float = 180.0,
) -> LoadResult:
    """Send one `/ask` per (asker, question) as fast as the fake can dispatch them, letting the
    bot run between two (`burst`: not, as if every frame arrived in one read), then wait until
    every one is answered or turned away (or `timeout` passes)."""
    loop = asyncio.get_running_loop()
    callbacks: dict[str, tuple[float, int]] = {}  # callback path -> (answered at, status)
    record = fake._record

    def timed(request: RecordedRequest, *, served: bool) -> None:
        if request.path.endswith("/callback"):
            callbacks.setdefault(request.path, (loop.time(), request.status))
        record(request, served=served)

    def refused(interaction: FakeInteraction) -> bool:
        """Whether the fake turned the acknowledgement away (10062: too late): lost for good."""
        return callbacks.get(interaction.callback_path, (0.0, 0))[1] >= 400

    def ack_seconds(interaction: FakeInteraction) -> float | None:
        """Seconds from dispatch to an accepted acknowledgement; None if there was none."""
        at, status = callbacks.get(interaction.callback_path, (0.0, 0))
        return at - interaction.sent_at if status in (200, 204) else None

    fake._record = timed  # type: ignore[method-assign]
    lag: list[tuple[float, float]] = []
    started = time.perf_counter()
    try:
        async with loop_lag(lag):
            interactions = []
            for asker, question in zip(askers, questions, strict=True):
                interactions.append(
                    await fake.send_slash_command("ask", {"question": question}, user=asker)
                )
                # Discord builds its payloads on its own machines; building 200 here in one go
                # holds the bot's loop (about 1 ms each) and counts against the first ones.
                if not burst:
                    await asyncio.sleep(0)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if all(_outcome(fake, i) != LOST or refused(i) for i in interactions):
                    break
                await asyncio.sleep(0.2)
    finally:
        fake._record = record  # type: ignore[method-assign]
    acks = [ack_seconds(i) for i in interactions]
    last_ack = max(
        (i.sent_at + s for i, s in zip(interactions, acks, strict=True) if s is not None),
        default=0.0,
    )
    result = LoadResult(
        outcomes=[_outcome(fake, i) for i in interactions],
        ack_seconds=acks,
        lag_ms=[ms for _, ms in lag],
        answering_lag_ms=[ms for at, ms in lag if at > last_ack],
        seconds=time.perf_counter() - started,
    )
    for interaction, outcome in zip(interactions, result.outcomes, strict=True):
        texts = [m["content"] for m in fake.messages_for(interaction)]
        result.replies.setdefault(outcome, []).extend(texts[:1])
    return result


def _outcome(fake: FakeDiscord, interaction: FakeInteraction) -> str:
    """Answered (a public message that is no longer "thinking"), rate-limited (only a private
    reply), or lost (nothing, a rejected callback, or still thinking)."""
    if interaction.response_type is None:
        return LOST
    messages: list[dict[str, Any]] = fake.messages_for(interaction)
    public = [m for m in messages if not m["flags"] & EPHEMERAL]
    if any(not m["flags"] & LOADING and m["content"] for m in public):
        return ANSWERED
    if not public and any(m["flags"] & EPHEMERAL and m["content"] for m in messages):
        return RATE_LIMITED
    return LOST
