"""The throttled publisher behind streamed Discord answers, with a recording sink."""

from __future__ import annotations

import asyncio
import threading
from itertools import pairwise

from bot.discord.throttle import ThrottledPublisher

INTERVAL = 0.1


class Sink:
    """Records what was published and when; each publish takes `seconds`."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.published: list[tuple[float, str]] = []
        self.got_first = asyncio.Event()

    async def publish(self, text: str) -> None:
        await asyncio.sleep(self.seconds)
        self.published.append((asyncio.get_running_loop().time(), text))
        self.got_first.set()


async def test_publishes_the_latest_text_at_most_once_per_interval() -> None:
    sink = Sink()
    publisher = ThrottledPublisher(sink.publish, INTERVAL)
    loop = asyncio.get_running_loop()
    pushed_until = loop.time() + 5 * INTERVAL
    text = ""
    while loop.time() < pushed_until:
        text += "x"
        publisher.push(text)
        await asyncio.sleep(0.01)
    await asyncio.sleep(INTERVAL)  # the last text goes out after the pause
    await publisher.close()

    times = [when for when, _ in sink.published]
    assert 4 <= len(times) <= 7
    assert all(later - earlier >= INTERVAL * 0.95 for earlier, later in pairwise(times))
    assert sink.published[-1][1] == text


async def test_close_waits_for_the_publish_in_progress_and_stops() -> None:
    sink = Sink(seconds=0.3)
    publisher = ThrottledPublisher(sink.publish, INTERVAL)
    publisher.push("first")
    await asyncio.sleep(0.05)  # the publish has started

    await publisher.close()
    publisher.push("too late")
    await asyncio.sleep(0.05)

    assert [text for _, text in sink.published] == ["first"]


async def test_pushes_from_a_worker_thread_reach_the_loop() -> None:
    sink = Sink()
    publisher = ThrottledPublisher(sink.publish, INTERVAL)

    worker = threading.Thread(target=publisher.push_threadsafe, args=("from a thread",))
    worker.start()
    await asyncio.wait_for(sink.got_first.wait(), 5)
    worker.join()
    await publisher.close()

    assert [text for _, text in sink.published] == ["from a thread"]


async def test_a_failed_publish_does_not_end_the_stream() -> None:
    published: list[str] = []

    async def flaky(text: str) -> None:
        if not published and text == "a":
            published.append("failed")
            raise ConnectionError("Discord hiccup")
        published.append(text)

    publisher = ThrottledPublisher(flaky, 0.01)
    publisher.push("a")
    await asyncio.sleep(0.05)
    publisher.push("ab")
    await asyncio.sleep(0.05)
    await publisher.close()

    assert published == ["failed", "ab"]
