"""The Chroma the tests index into: embedded, or a real `chroma run` server when the suite runs
with `CITEBOT_TEST_CHROMA=server` (each test then gets a database of its own on it)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import chromadb
import httpx

from index.chroma import ChromaConnection, ChromaServer

MODE_VARIABLE = "CITEBOT_TEST_CHROMA"
LEASE_SECONDS = 60.0


def server_mode() -> bool:
    """Whether this run of the suite talks to a Chroma server."""
    return os.environ.get(MODE_VARIABLE) == "server"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def chroma_server(path: Path, port: int | None = None) -> Iterator[str]:
    """`chroma run --path PATH --port N` on 127.0.0.1 until the block ends; yields its URL."""
    port = port or free_port()
    chroma = Path(sys.executable).with_name("chroma")
    command = [str(chroma) if chroma.exists() else "chroma", "run", "--path", str(path)]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_up(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"chroma run exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no Chroma server came up at {url}")


def new_database(url: str) -> str:
    """A fresh, empty database on the server, so tests do not see each other's collections."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    host, port = url.removeprefix("http://").split(":")
    admin = chromadb.AdminClient(
        chromadb.Settings(
            chroma_api_impl="chromadb.api.fastapi.FastAPI",
            chroma_server_host=host,
            chroma_server_http_port=int(port),
            anonymized_telemetry=False,
        )
    )
    admin.create_database(name)
    return name


def current_server() -> ChromaServer | None:
    """The server and database of the running test (set by the suite's fixture), if any."""
    url = os.environ.get("CITEBOT_CHROMA_URL")
    if not url:
        return None
    return ChromaServer(url=url, database=os.environ.get("CITEBOT_CHROMA_DATABASE", ""))


def connection(data_dir: Path, server: ChromaServer | None = None) -> ChromaConnection:
    """A connection as the running test's mode has it: this data directory, and the test's
    server database in server mode."""
    return ChromaConnection(data_dir, server or current_server(), LEASE_SECONDS)
