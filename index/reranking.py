"""Reranking retrieved chunks with a cross-encoder, which reads question and passage together.

Optional: any sentence-transformers `CrossEncoder` (a Hugging Face name or a local folder). When
none is configured, or the configured one cannot be loaded here, retrieval runs without it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from index.hub import ModelUnavailableError, load_model

log = logging.getLogger(__name__)


class Reranker(Protocol):
    """Scores (question, passage) pairs; higher means more relevant."""

    @property
    def identity(self) -> str: ...

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray: ...


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder."""

    def __init__(self, model: object, name: str) -> None:
        self._model = model
        self._name = name

    @property
    def identity(self) -> str:
        return f"cross-encoder:{self._name}"

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0, dtype=np.float32)
        scores = self._model.predict(  # type: ignore[attr-defined]
            [(query, passage) for passage in passages],
            batch_size=16,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.asarray(scores, dtype=np.float32).reshape(len(passages))


def load_reranker(model: str | None, device: str | None = None) -> Reranker | None:
    """The configured cross-encoder, or None (no reranking) when none is configured or it cannot
    be loaded here; the latter is logged once, so a missing model never stops the bot."""
    if not model:
        return None

    def load(name: str, local_files_only: bool) -> Any:
        from sentence_transformers import CrossEncoder

        return CrossEncoder(name, device=device, local_files_only=local_files_only)

    try:
        encoder, name = load_model(model, "reranker", load)
    except ModelUnavailableError as error:
        log.warning("reranker off: %s", error)
        return None
    if encoder.num_labels != 1:
        log.warning(
            "reranker off: %s gives %d scores per pair; a reranker gives one",
            name,
            encoder.num_labels,
        )
        return None
    return CrossEncoderReranker(encoder, name)
