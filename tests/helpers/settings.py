"""The settings' defaults for tests that build library objects directly, so no test re-types
a default (`bot.settings.Settings` is their one home)."""

from __future__ import annotations

import dataclasses

from bot.answer.llm.client import ChatEndpoint
from bot.settings import Settings
from index.embedding import EmbedderSpec
from index.remote_embedding import EmbeddingEndpoint
from index.retrieval import RetrievalConfig

# The fields' defaults alone: neither the environment nor a `.env` file is read.
DEFAULTS = Settings.model_construct()


def retrieval_config(**changes: object) -> RetrievalConfig:
    """The default retrieval configuration, with `changes` (mode, article_diversity, ...)."""
    return dataclasses.replace(DEFAULTS.retrieval_config, **changes)  # type: ignore[arg-type]


def chat_endpoint(base_url: str, model: str, **changes: object) -> ChatEndpoint:
    """The chat endpoint the default settings build for `base_url` and `model`, with `changes`."""
    endpoint = Settings.model_construct(llm_base_url=base_url, llm_model=model).llm_endpoint
    assert endpoint is not None
    return dataclasses.replace(endpoint, **changes)  # type: ignore[arg-type]


def embedding_endpoint(url: str, **changes: object) -> EmbeddingEndpoint:
    """The embeddings endpoint the default settings build for `url`, with `changes`."""
    spec = Settings.model_construct(embedding_backend="http", embedding_url=url).embedder_spec
    assert spec.endpoint is not None
    return dataclasses.replace(spec.endpoint, **changes)  # type: ignore[arg-type]


def embedder_spec(**changes: object) -> EmbedderSpec:
    """The default embedder spec with `changes`; its cache is the per-user one unless
    `cache_dir` is given (the default settings' `data/cache` is relative to the cwd)."""
    return dataclasses.replace(
        DEFAULTS.embedder_spec,
        **{"cache_dir": None, **changes},  # type: ignore[arg-type]
    )
