"""`.env.example`, the file a team copies to `.env`: it names every setting and only real ones,
its values load, and it leaves alone what the container image sets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.settings import Settings

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / ".env.example"
# Read by compose.yaml, not by Citebot: the host folder mounted as the articles.
COMPOSE_ONLY = {"CITEBOT_ARTICLES_HOST_DIR"}
_LINE = re.compile(r"^(#\s?)?([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def _names(*, commented: bool | None = None) -> set[str]:
    text = EXAMPLE.read_text("utf-8")
    return {
        match[2]
        for match in _LINE.finditer(text)
        if commented is None or bool(match[1]) == commented
    }


def _setting_names() -> set[str]:
    return {field.alias or name for name, field in Settings.model_fields.items()}


def test_it_names_every_setting_and_only_real_ones() -> None:
    assert _setting_names() - _names() == set()
    assert _names() - _setting_names() - COMPOSE_ONLY == set()


def test_its_values_load(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _setting_names():
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=EXAMPLE)
    assert settings.collection == "articles"
    assert settings.top_k == 5


def test_it_leaves_what_the_image_sets_to_the_image() -> None:
    """`docker run --env-file .env` and compose's env_file override the image's ENV: a copied
    ./data would point the bot at a folder inside the image, not the /data volume."""
    dockerfile = (REPO / "Dockerfile").read_text("utf-8")
    image_sets = set(re.findall(r"\b(CITEBOT_[A-Z_]+)=", dockerfile))
    assert {"CITEBOT_DATA_DIR", "CITEBOT_ARTICLES_DIR", "CITEBOT_EMBEDDING_BACKEND"} <= image_sets
    assert image_sets & _names(commented=False) == set()
