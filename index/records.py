"""What the store holds and returns: articles' manifests, chunks and their passages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

PassageKind = Literal["sentence", "window"]


@dataclass(frozen=True)
class StoredArticle:
    """An indexed article's live version: its hash, chunks and where its file was.

    The manifest is written after the version's chunks and passages, so the chunks it names are
    the article as readers see it; `stored_chunks` counts how many of them are really there.
    """

    content_hash: str
    expected_chunks: int
    stored_chunks: int
    path: str = ""
    chunk_ids: tuple[str, ...] = ()
    passages: int = 0

    @property
    def complete(self) -> bool:
        return self.stored_chunks == self.expected_chunks


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the store returns it, with its similarity to the query (cosine, 1 is best)."""

    chunk_id: str
    article_id: str
    text: str
    title: str
    date: str | None
    url: str | None
    path: str
    ordinal: int
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class PassageRecord:
    """A sentence of a chunk, or a window of two adjacent ones, embedded on its own; `start` and
    `end` are where it is in the chunk's text.

    A question usually asks about one sentence, which a whole chunk's vector dilutes; a window
    adds the neighbour that resolves "it" and "the company" (measured in `bench/quality.py`).
    """

    chunk_id: str
    kind: PassageKind
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class ChunkPassages:
    """A chunk's passages as the store returns them: its sentences' spans in its text, and
    the vectors of its sentences and of its windows, in text order."""

    spans: tuple[tuple[int, int], ...]
    sentence_vectors: np.ndarray
    window_vectors: np.ndarray

    def sentences(self, text: str) -> list[str]:
        """The sentences, cut from the chunk's text."""
        return [text[start:end] for start, end in self.spans]
