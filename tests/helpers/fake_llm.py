"""An OpenAI-compatible chat-completions server on 127.0.0.1, for tests of generated answers.

It serves ``POST /v1/chat/completions``, streamed (server-sent ``data: {...}`` chunks, then
``data: [DONE]``) or whole, from replies each test scripts in order, and records every request.
It runs its own event loop in a thread, so blocking code (the answer engine in a worker
thread, the CLI) and async tests can both call it. Typical use::

    with FakeLLM() as llm:
        llm.script(Reply.error(429, retry_after=0), Reply.answer("Gemma [1]."))
        ...  # point LLM_BASE_URL at llm.base_url
        [first, second] = llm.requests

A request beyond the script is answered with 500 and kept in ``FakeLLM.unscripted``.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_PASSAGE = re.compile(r"<<data (\w+) passage \[(\d+)\]>>\n(.*?)\n<<end data \1>>", re.DOTALL)


@dataclass(frozen=True)
class LLMRequest:
    """One request the fake received: headers, JSON body, and when (``time.monotonic``)."""

    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float

    @property
    def system(self) -> str:
        """The system message."""
        return next(m["content"] for m in self.body["messages"] if m["role"] == "system")

    @property
    def user(self) -> str:
        """The last user message."""
        return [m["content"] for m in self.body["messages"] if m["role"] == "user"][-1]

    def passages(self) -> dict[int, str]:
        """The numbered passage blocks of the user message (title, date, text), by number."""
        return {int(n): block for _, n, block in _PASSAGE.findall(self.user)}

    def passage_with(self, text: str) -> int:
        """The number of the first passage containing ``text``."""
        return next(n for n, block in sorted(self.passages().items()) if text in block)


@dataclass(frozen=True)
class Reply:
    """How the fake answers one request.

    ``content`` is the reply text, or a function of the request that returns it. A reply
    waits ``delay_seconds`` before answering at all, and ``chunk_delay_seconds`` between
    streamed chunks of ``chunk_chars`` characters.
    """

    content: str | Callable[[LLMRequest], str] = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    chunk_delay_seconds: float = 0.0
    chunk_chars: int = 8

    @classmethod
    def answer(
        cls, content: str | Callable[[LLMRequest], str], *, chunk_delay_seconds: float = 0.0
    ) -> Reply:
        """A successful reply."""
        return cls(content=content, chunk_delay_seconds=chunk_delay_seconds)

    @classmethod
    def error(cls, status: int, message: str = "upstream failure", **kw: Any) -> Reply:
        """An error status with an OpenAI-style error body; ``retry_after`` sets the header."""
        retry_after = kw.pop("retry_after", None)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return cls(content=message, status=status, headers=headers, **kw)

    @classmethod
    def slow(cls, seconds: float, content: str = "Too late [1].") -> Reply:
        """A reply that only starts after ``seconds``."""
        return cls(content=content, delay_seconds=seconds)

    @classmethod
    def echo_system_prompt(cls) -> Reply:
        """What an injected model might do: repeat its rules, with a citation for show."""
        return cls(content=lambda request: f"{request.system} [1]")


class FakeLLM:
    """The fake endpoint: ``base_url`` is what ``LLM_BASE_URL`` should be set to."""

    completions_path = "/v1/chat/completions"

    def __init__(self) -> None:
        self.requests: list[LLMRequest] = []
        self.unscripted: list[LLMRequest] = []
        self._replies: deque[Reply] = deque()
        self._received = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order."""
        self._replies.extend(replies)

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (ending in /v1)."""
        if self._port is None:
            raise RuntimeError("FakeLLM is not started")
        return f"http://127.0.0.1:{self._port}/v1"

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[LLMRequest]:
        """Block until at least ``count`` requests have arrived; return them all."""
        with self._received:
            if not self._received.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"{len(self.requests)} requests within {timeout}s")
            return list(self.requests)

    def start(self) -> None:
        """Serve on a free port of 127.0.0.1 from a thread of its own."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        started = asyncio.run_coroutine_threadsafe(self._start(sock), self._loop)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        started.result(timeout=5)

    def stop(self) -> None:
        """Close the server and its thread."""
        if self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
        self._thread = None

    def __enter__(self) -> FakeLLM:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _start(self, sock: socket.socket) -> None:
        app = web.Application()
        app.router.add_post(self.completions_path, self._completions)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def _shutdown(self) -> None:
        """Close the server and end replies still in progress (a slow one the client left)."""
        if self._runner is not None:
            await self._runner.cleanup()
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        recorded = LLMRequest(dict(request.headers), await request.json(), time.monotonic())
        reply = self._replies.popleft() if self._replies else None
        with self._received:
            self.requests.append(recorded)
            if reply is None:
                self.unscripted.append(recorded)
            self._received.notify_all()
        if reply is None:
            return _error(500, "the test scripted no reply for this request", {})
        await asyncio.sleep(reply.delay_seconds)
        if reply.status != 200:
            return _error(reply.status, _text(reply, recorded), reply.headers)
        text = _text(reply, recorded)
        if not recorded.body.get("stream"):
            return web.json_response(_completion(recorded, text))
        return await _stream(request, recorded, reply, text)


def _text(reply: Reply, request: LLMRequest) -> str:
    return reply.content(request) if callable(reply.content) else reply.content


def _error(status: int, message: str, headers: dict[str, str]) -> web.Response:
    body = {"error": {"message": message, "type": "fake_error", "code": status}}
    return web.json_response(body, status=status, headers=headers)


def _completion(request: LLMRequest, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
    }


async def _stream(
    request: web.Request, recorded: LLMRequest, reply: Reply, text: str
) -> web.StreamResponse:
    """Send the text in chunks as server-sent events, then a stop chunk and [DONE]."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    pieces = [text[i : i + reply.chunk_chars] for i in range(0, len(text), reply.chunk_chars)]
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": piece} for piece in pieces]
    for index, delta in enumerate([*deltas, {}]):
        if index > 1:
            await asyncio.sleep(reply.chunk_delay_seconds)
        chunk = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": recorded.body.get("model"),
            "choices": [{"index": 0, "delta": delta, "finish_reason": None if delta else "stop"}],
        }
        await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response
