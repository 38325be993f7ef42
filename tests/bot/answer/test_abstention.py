"""Abstention: the margin over the crowd, the policy, and the calibrated policy on a real index."""

import numpy as np
import pytest

from bot.answer.abstention import AbstentionPolicy, abstains, abstention_margin, calibrated_policy
from index.corpus import Corpus
from index.retrieval import Retrieval
from index.store import StoredChunk
from tests.helpers.corpora import indexed_corpus
from tests.helpers.settings import retrieval_config

ARTICLES = {
    "matsu.md": "---\ntitle: 馬祖列島\n---\n馬祖列島位於臺灣海峽西北方，由36個島嶼組成。"
    "馬祖的氣候屬於副熱帶季風氣候，冬季寒冷潮濕。",
    "bakery.md": "---\ntitle: Bakery\n---\nA bakery in Taipei won the bread prize with pineapple "
    "buns made by chef Wu Pao-chun.",
}


@pytest.fixture(scope="module")
def corpus(e5, tmp_path_factory) -> Corpus:
    return indexed_corpus(tmp_path_factory, e5, ARTICLES, "abstention")


def test_abstention_margin_compares_the_best_with_the_next_chunks():
    dense = [0.9, *[0.7] * 30, *[0.6] * 19]
    assert abstention_margin(dense, background=[0.1] * 100) == pytest.approx(0.2)
    assert abstention_margin([]) == 0.0


def test_a_small_corpus_is_topped_up_with_background_passages():
    assert abstention_margin([0.8, 0.79], background=[0.6] * 60) == pytest.approx(0.2)
    assert abstention_margin([0.8], background=[]) == 0.0


def _retrieval(dense, background, same_script=False, overlap=0.0, chunks=0):
    found = [
        StoredChunk(f"c{n}", "a", "text", "title", None, None, "", n, 0, 4, 0.5)
        for n in range(chunks)
    ]
    return Retrieval(
        "q", np.zeros(2), found, list(dense), list(background), same_script, overlap, 0.0, 0.0
    )


def test_across_languages_the_best_passage_must_stand_out():
    policy = AbstentionPolicy(min_top_score=0.7, min_margin=0.05)
    assert policy.should_abstain(_retrieval([0.69], [0.1] * 40))
    assert policy.should_abstain(_retrieval([0.8, 0.79, 0.79, 0.78], [0.79] * 40))
    assert not policy.should_abstain(_retrieval([0.9, 0.79, 0.79, 0.78], [0.6] * 40))
    assert not policy.should_abstain(_retrieval([], [])), "BM25-only retrieval: no evidence"


def test_in_the_articles_language_the_best_passage_must_share_words():
    policy = AbstentionPolicy(min_top_score=0.7, min_margin=0.05, min_overlap=0.2)
    flat = ([0.8, 0.79, 0.79, 0.78], [0.79] * 40)
    assert not policy.should_abstain(_retrieval(*flat, same_script=True, overlap=0.5))
    assert policy.should_abstain(_retrieval(*flat, same_script=True, overlap=0.1))
    assert policy.should_abstain(_retrieval(*flat, same_script=False, overlap=0.5)), "no margin"


def test_calibrated_policy_abstains_on_an_unrelated_question_in_a_small_corpus(corpus):
    policy = calibrated_policy(corpus.embedder.identity)
    retriever = corpus.retriever(retrieval_config(mode="hybrid"))
    assert not policy.should_abstain(retriever.retrieve("馬祖列島由幾個島嶼組成？", 5))
    assert policy.should_abstain(retriever.retrieve("How do I reset my router password?", 5))


def test_nothing_found_is_always_an_abstention():
    assert abstains(_retrieval([], []), None)
    assert not abstains(_retrieval([0.1], [0.9] * 40, chunks=1), None), "no policy, no judging"
