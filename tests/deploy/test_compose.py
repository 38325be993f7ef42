"""compose.yaml and the Dockerfile, which cannot be built here (no Docker daemon): the compose
file against the Compose Specification's JSON schema, what the services promise, and the Chroma
health check run against a real `chroma run` on 127.0.0.1."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose.yaml"
TORCH_INSTALL = '"torch==2.13.0+cpu" --extra-index-url https://download.pytorch.org/whl/cpu'


def _check_schema(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with its bundled copy of the Compose Specification schema (offline)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text("utf-8"))


def test_compose_file_follows_the_compose_specification() -> None:
    result = _check_schema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_mistake(tmp_path: Path) -> None:
    broken = COMPOSE.read_text("utf-8").replace("condition: service_healthy", "condition: up")
    (tmp_path / "compose.yaml").write_text(broken, encoding="utf-8")
    assert _check_schema(tmp_path / "compose.yaml").returncode != 0


def test_chroma_image_matches_the_client_and_persists(compose: dict[str, Any]) -> None:
    chroma = compose["services"]["chroma"]
    assert chroma["image"] == f"chromadb/chroma:{version('chromadb')}"
    assert "chroma-data:/data" in chroma["volumes"]
    assert chroma["restart"] == "unless-stopped"


@pytest.mark.parametrize("name", ["bot", "indexer"])
def test_citebot_services_use_the_chroma_server_and_read_articles_read_only(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    assert service["build"] == "."
    assert service["env_file"] == ".env"
    assert service["environment"]["CITEBOT_CHROMA_URL"] == "http://chroma:8000"
    assert service["depends_on"] == {"chroma": {"condition": "service_healthy"}}
    mounts = [volume.rsplit(":", 2) for volume in service["volumes"]]
    assert [target for _, target, *mode in mounts if mode == ["ro"]] == ["/articles"]
    assert service["environment"]["CITEBOT_ARTICLES_DIR"] == "/articles"


def test_the_bot_restarts_and_the_indexer_is_a_one_shot_profile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["bot"]["restart"] == "unless-stopped"
    assert services["bot"]["command"] == ["bot"]
    assert "profiles" not in services["bot"]
    assert services["indexer"]["profiles"] == ["index"]
    assert services["indexer"]["command"] == ["index"]
    assert services["indexer"]["restart"] == "no"
    assert services["indexer"]["healthcheck"] == {"disable": True}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real Chroma server (the `chroma` CLI of the pinned client) on a free loopback port."""
    port = _free_port()
    data = tmp_path_factory.mktemp("chroma")
    server = subprocess.Popen(
        ["chroma", "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, "chroma run exited"
                time.sleep(0.2)
        else:
            pytest.fail("chroma run did not listen within 60 s")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def _healthcheck_command(compose: dict[str, Any], port: int) -> list[str]:
    """The compose health check's command as Docker runs it, aimed at `port`."""
    kind, *command = compose["services"]["chroma"]["healthcheck"]["test"]
    assert kind == "CMD"
    script = command[-1].replace("$$", "$")  # compose's escape for a literal $
    assert "/dev/tcp/127.0.0.1/8000" in script
    command[-1] = script.replace("/dev/tcp/127.0.0.1/8000", f"/dev/tcp/127.0.0.1/{port}")
    return command


def _exit_code(command: list[str]) -> int:
    return subprocess.run(command, capture_output=True, timeout=10, check=False).returncode


def test_the_chroma_healthcheck_passes_against_a_real_server(
    compose: dict[str, Any], chroma_port: int
) -> None:
    assert _exit_code(_healthcheck_command(compose, chroma_port)) == 0


def test_the_chroma_healthcheck_fails_without_a_server(compose: dict[str, Any]) -> None:
    assert _exit_code(_healthcheck_command(compose, _free_port())) != 0


def test_the_chroma_healthcheck_fails_on_an_error_status(compose: dict[str, Any]) -> None:
    """Something listening is not enough: the heartbeat must answer 200."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        check = subprocess.Popen(_healthcheck_command(compose, listener.getsockname()[1]))
        connection, _ = listener.accept()
        with connection:
            assert connection.recv(4096).startswith(b"GET /api/v2/heartbeat HTTP/1.1\r\n")
            connection.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        assert check.wait(timeout=10) != 0


def test_dockerfile_health_check_is_the_bot_heartbeat() -> None:
    dockerfile = (REPO / "Dockerfile").read_text("utf-8")
    health = re.search(r"^HEALTHCHECK (.+?)\n(?=\S|\n)", dockerfile, re.MULTILINE | re.DOTALL)
    assert health is not None
    assert 'CMD ["citebot", "health"]' in health[1]
    assert re.search(r"^USER 10001$", dockerfile, re.MULTILINE)
    assert re.search(r'^VOLUME \["/data"\]$', dockerfile, re.MULTILINE)
    assert len(re.findall(r"^FROM python:3\.11-slim", dockerfile, re.MULTILINE)) == 2


def test_readme_ci_and_dockerfile_install_the_same_cpu_torch() -> None:
    for path in ("README.md", ".ci/run", "Dockerfile"):
        assert TORCH_INSTALL in (REPO / path).read_text("utf-8"), path
