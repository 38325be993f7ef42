"""Embedder wrappers for tests: the real model underneath, with test-only behaviour on top."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from index.embedding import Embedder


class MemoisingEmbedder:
    """Embeds each distinct text once per test session: many tests index the same articles,
    and the real model takes about half a second per passage on a small CPU."""

    def __init__(self, model: Embedder) -> None:
        self._model = model
        self._documents: dict[str, np.ndarray] = {}
        self._queries: dict[str, np.ndarray] = {}

    @property
    def identity(self) -> str:
        """The wrapped model's identity: indexes built through either are interchangeable."""
        return self._model.identity

    @property
    def dimension(self) -> int:
        """The wrapped model's dimension."""
        return self._model.dimension

    @property
    def max_tokens(self) -> int:
        """The wrapped model's input limit."""
        return self._model.max_tokens

    def count_tokens(self, text: str) -> int:
        """The wrapped model's token count."""
        return self._model.count_tokens(text)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Document vectors, computed only for texts not seen before."""
        return _memoised(texts, self._documents, self._model.embed_documents, self.dimension)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors, computed only for texts not seen before."""
        return _memoised(texts, self._queries, self._model.embed_queries, self.dimension)


class GatedEmbedder(MemoisingEmbedder):
    """Holds any document batch containing `marker` until `gate` is set, so a test can act
    while indexing is provably in progress (and knows it has reached the marked article)."""

    def __init__(self, model: Embedder, marker: str) -> None:
        super().__init__(model)
        self.marker = marker
        self.reached = threading.Event()
        self.gate = threading.Event()

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Wait at the gate (at most 30 s) for a batch with the marker, then embed."""
        if any(self.marker in text for text in texts):
            self.reached.set()
            if not self.gate.wait(timeout=30):
                raise TimeoutError("the test never opened the embedding gate")
        return super().embed_documents(texts)


def _memoised(
    texts: Sequence[str],
    memo: dict[str, np.ndarray],
    embed: Callable[[Sequence[str]], np.ndarray],
    dimension: int,
) -> np.ndarray:
    missing = list(dict.fromkeys(text for text in texts if text not in memo))
    if missing:
        memo.update(zip(missing, embed(missing), strict=True))
    if not texts:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.stack([memo[text] for text in texts])
