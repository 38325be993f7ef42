"""The passage codec: a chunk's passages (sentence spans, sentence and window vectors) packed into
the metadata of one Chroma record.

Only chunk vectors are searched; passage vectors are read for the few chunks a search found.
Packed this way, a corpus holds one searched vector per chunk instead of about twenty, and a
chunk's passages cost one record read. Vectors are stored as float16: cosine similarities move
by about 1e-4, far below the gaps that order passages.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np

from index.records import ChunkPassages, PassageRecord


def pack_passages(passages: Sequence[PassageRecord], vectors: np.ndarray) -> dict[str, Any]:
    """One chunk's passages and their vectors (rows in the same order) as record metadata:
    `spans` the sentences' start and end offsets, `vectors` sentences' rows then windows'."""
    sentences = [n for n, passage in enumerate(passages) if passage.kind == "sentence"]
    windows = [n for n, passage in enumerate(passages) if passage.kind == "window"]
    ordered = np.asarray(vectors, dtype=np.float32)[sentences + windows]
    return {
        "spans": ",".join(f"{passages[n].start},{passages[n].end}" for n in sentences),
        "dimension": int(ordered.shape[1]),
        "vectors": base64.b64encode(ordered.astype("<f2").tobytes()).decode("ascii"),
    }


def unpack_passages(metadata: dict[str, Any]) -> ChunkPassages:
    """The `ChunkPassages` that `pack_passages` packed."""
    return decode_passages(*packed_fields(metadata))


def packed_fields(metadata: dict[str, Any]) -> tuple[str, int, bytes]:
    """What a packed record holds, as stored elsewhere (`index.passage_replica`): the spans,
    the dimension and the raw float16 rows."""
    return (
        str(metadata["spans"]),
        int(metadata["dimension"]),
        base64.b64decode(str(metadata["vectors"])),
    )


def decode_passages(spans: str, dimension: int, vectors: bytes) -> ChunkPassages:
    """The `ChunkPassages` of packed fields: sentences' rows first, then windows'."""
    offsets = [int(value) for value in spans.split(",") if value]
    pairs = tuple(zip(offsets[0::2], offsets[1::2], strict=True))
    rows = np.frombuffer(vectors, dtype="<f2").reshape(-1, dimension).astype(np.float32)
    return ChunkPassages(pairs, rows[: len(pairs)], rows[len(pairs) :])
