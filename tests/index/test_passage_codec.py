"""A chunk's passages survive packing into one record: spans, order and vectors."""

from __future__ import annotations

import numpy as np

from index.chunking import Chunk
from index.passage_codec import pack_passages, unpack_passages
from index.passages import passage_records


def _chunk(text: str) -> Chunk:
    return Chunk("c1", "a", 0, 0, len(text), text, token_count=len(text))


def test_spans_and_vectors_round_trip_in_text_order():
    chunk = _chunk("馬祖列島位於臺灣海峽。由36個島嶼組成。 Its climate is subtropical.")
    records = passage_records(chunk)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(records), 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # Windows first in the input: packing must still put the sentences first.
    order = sorted(range(len(records)), key=lambda n: records[n].kind != "window")

    unpacked = unpack_passages(pack_passages([records[n] for n in order], vectors[order]))

    sentences = [r for r in records if r.kind == "sentence"]
    assert unpacked.sentences(chunk.text) == [r.text for r in sentences]
    assert unpacked.sentences(chunk.text)[1] == "由36個島嶼組成。"
    sentence_rows = [n for n, r in enumerate(records) if r.kind == "sentence"]
    window_rows = [n for n, r in enumerate(records) if r.kind == "window"]
    np.testing.assert_allclose(unpacked.sentence_vectors, vectors[sentence_rows], atol=1e-3)
    np.testing.assert_allclose(unpacked.window_vectors, vectors[window_rows], atol=1e-3)
    assert len(unpacked.window_vectors) == len(sentences) - 1


def test_a_one_sentence_chunk_has_its_sentence_as_its_window():
    chunk = _chunk("Avocado launches next spring.")
    records = passage_records(chunk)
    unpacked = unpack_passages(pack_passages(records, np.eye(len(records), 4, dtype=np.float32)))
    assert unpacked.sentences(chunk.text) == ["Avocado launches next spring."]
    assert len(unpacked.window_vectors) == 1
    assert [r.text for r in records if r.kind == "window"] == ["Avocado launches next spring."]
