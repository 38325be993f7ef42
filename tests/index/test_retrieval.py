import numpy as np
import pytest

from index.corpus import Corpus
from index.retrieval import fuse, spread_over_articles
from index.store import StoredChunk
from tests.helpers.corpora import indexed_corpus
from tests.helpers.settings import retrieval_config

ARTICLES = {
    "sanskrit.md": "---\ntitle: 梵文\n---\n在歐洲，梵語的學術研究，由德國學者陸特和漢斯雷頓開創。"
    "後來威廉·瓊斯發現印歐語系，也要歸功於對梵語的研究。",
    "matsu.md": "---\ntitle: 馬祖列島\n---\n馬祖列島位於臺灣海峽西北方，由36個島嶼組成。"
    "馬祖的氣候屬於副熱帶季風氣候，冬季寒冷潮濕。",
    "julian.md": "---\ntitle: 儒略日\n---\n儒略日是在儒略週期內以連續的日數計算時間的計時法，"
    "主要是天文學家在使用。",
    "bakery.md": "---\ntitle: Bakery\n---\nA bakery in Taipei won the bread prize with pineapple "
    "buns made by chef Wu Pao-chun.",
}


@pytest.fixture(scope="module")
def corpus(e5, tmp_path_factory) -> Corpus:
    return indexed_corpus(tmp_path_factory, e5, ARTICLES, "retrieval")


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_every_mode_ranks_the_right_article_first(corpus, mode):
    retrieval = corpus.retriever(retrieval_config(mode=mode)).retrieve(
        "馬祖列島由幾個島嶼組成？", 3
    )
    assert retrieval.chunks[0].article_id == "matsu.md"
    scores = [chunk.score for chunk in retrieval.chunks]
    assert scores == sorted(scores, reverse=True)
    assert all(chunk.text and chunk.title for chunk in retrieval.chunks)


def test_simplified_question_matches_traditional_text_lexically(corpus):
    retrieval = corpus.retriever(retrieval_config(mode="bm25")).retrieve(
        "梵语的学术研究由谁开创？", 2
    )
    assert retrieval.chunks[0].article_id == "sanskrit.md"


def test_english_question_finds_chinese_passage_in_hybrid_mode(corpus):
    question = "Who started the study of Sanskrit in Europe?"
    retrieval = corpus.retriever(retrieval_config(mode="hybrid")).retrieve(question, 2)
    assert retrieval.chunks[0].article_id == "sanskrit.md"
    assert retrieval.dense_scores == sorted(retrieval.dense_scores, reverse=True)


def test_english_words_are_searched_for_as_the_chinese_words_the_articles_write(corpus):
    retriever = corpus.retriever(retrieval_config(mode="bm25"))
    question = "What is the climate of the Matsu Islands like?"
    written, share = retriever.translations(question)
    assert {"气候", "列岛"} <= set(written)  # folded, as BM25 reads the articles
    assert all("桥" not in word for word in written)  # only words these articles write
    assert share == 3 / 4  # climate, matsu and islands are written; "like" is not
    retrieval = retriever.retrieve(question, 2)
    assert retrieval.chunks[0].article_id == "matsu.md"  # BM25 alone, across languages


def test_exact_name_in_an_english_question_is_found(corpus):
    retrieval = corpus.retriever(retrieval_config(mode="hybrid")).retrieve(
        "Which chef made the pineapple buns?", 1
    )
    assert retrieval.chunks[0].article_id == "bakery.md"


def test_a_rewrite_is_searched_alongside_the_query_and_judged_as_the_articles_would(corpus):
    retriever = corpus.retriever(retrieval_config(mode="hybrid"))
    query, rewrite = "How many islands are in the group?", "馬祖列島由幾個島嶼組成？"

    alone = retriever.retrieve(query, 2)
    both = retriever.retrieve(query, 2, [rewrite, query])

    assert both.chunks[0].article_id == "matsu.md"
    assert both.query == query
    assert both.rewrites == (rewrite,)  # the query itself is not searched twice
    assert np.array_equal(both.query_vector, retriever.query_vector(query))
    # The abstention evidence is the Chinese wording's: same script as the article, and its
    # words are there; the English query alone shares none.
    assert not alone.same_script
    assert alone.lexical_overlap == 0.0
    assert both.same_script
    assert both.lexical_overlap > 0.5
    assert both.dense_scores[0] > alone.dense_scores[0]
    assert retriever.articles_write_chinese


def _chunk(chunk_id: str, article_id: str, score: float) -> StoredChunk:
    return StoredChunk(chunk_id, article_id, "text", "title", None, None, "", 0, 0, 4, score)


def test_a_result_is_shown_by_its_passage_nearest_the_query(e5, tmp_path_factory):
    bridge = {
        "bridge.md": "---\ntitle: Greywater Bridge\n---\nThe city of Port Alder opened its new "
        "cable-stayed bridge on Monday after four years of work. The mayor thanked the engineers "
        "and the workers. Drivers will pay no tolls for the first six months,\nafter which a "
        "toll of two dollars applies. A festival on the riverbank closed the day.",
        **ARTICLES,
    }
    retriever = indexed_corpus(tmp_path_factory, e5, bridge, "passages").retriever(
        retrieval_config()
    )
    retrieval = retriever.retrieve("Do drivers pay a toll on the bridge?", 2)
    assert retrieval.chunks[0].article_id == "bridge.md"
    passages = retriever.matching_passages(retrieval)
    assert set(passages) == {chunk.chunk_id for chunk in retrieval.chunks}
    shown = passages[retrieval.chunks[0].chunk_id]
    assert "Drivers will pay no tolls for the first six months, after which" in shown
    assert not shown.startswith("The city of Port Alder")  # not the chunk's opening lines


def test_fusion_follows_bm25_only_as_far_as_its_weight():
    dense = [("a", 0.9), ("b", 0.8), ("c", 0.7), ("e", 0.1)]
    lexical = [("c", 30.0), ("b", 5.0), ("d", 1.0)]
    assert [chunk_id for chunk_id, _ in fuse(dense, lexical, 0.0)][:3] == ["a", "b", "c"]
    assert fuse(dense, lexical, 1.0)[0][0] == "c"
    assert {chunk_id for chunk_id, _ in fuse(dense, lexical, 0.5)} == {"a", "b", "c", "d", "e"}


def test_a_second_chunk_of_an_article_must_clearly_beat_other_articles():
    ranked = [_chunk("a1", "a", 1.0), _chunk("a2", "a", 0.95), _chunk("b1", "b", 0.9)]
    ranked += [_chunk(f"c{n}", "c", 0.1) for n in range(3)]
    spread = [chunk.chunk_id for chunk in spread_over_articles(ranked, 0.25)]
    assert spread[:3] == ["a1", "b1", "a2"], "0.05 apart is less than a quarter deviation"
    assert [chunk.chunk_id for chunk in spread_over_articles(ranked, 0.0)] == [
        chunk.chunk_id for chunk in ranked
    ]
    far_ahead = [_chunk("a1", "a", 1.0), _chunk("a2", "a", 0.99), _chunk("b1", "b", 0.1)]
    far_ahead += [_chunk(f"c{n}", "c", 0.1) for n in range(3)]
    assert [c.chunk_id for c in spread_over_articles(far_ahead, 0.25)][:2] == ["a1", "a2"]
    assert [chunk.score for chunk in spread_over_articles(ranked, 0.25)][1] == 0.9


def test_dense_scores_come_from_sentences_and_windows(corpus):
    retrieval = corpus.retriever(retrieval_config(mode="dense")).retrieve(
        "馬祖的氣候屬於什麼氣候？", 3
    )
    store = corpus.store()
    store.open_for_reading()
    best = retrieval.chunks[0]
    own = store.passages_of([best.chunk_id])[best.chunk_id]
    assert best.article_id == "matsu.md"
    assert len(own.window_vectors) == max(len(own.sentence_vectors) - 1, 1)
    expected = (
        max(own.sentence_vectors @ retrieval.query_vector)
        + max(own.window_vectors @ retrieval.query_vector)
    ) / 2
    assert retrieval.dense_scores[0] == pytest.approx(expected, abs=1e-6)


def test_a_chunk_bm25_finds_is_ranked_by_its_passages_though_its_vector_missed(corpus):
    """The store's first stage searches chunk vectors (means); a chunk whose mean misses the
    question but BM25 finds is scored by its passages all the same, and only in hybrid mode."""
    question = "馬祖列島由幾個島嶼組成？"
    store = corpus.store()
    store.open_for_reading()
    (matsu,) = store.stored_articles()["matsu.md"].chunk_ids
    retriever = corpus.retriever(retrieval_config(mode="hybrid"))
    searched = retriever._store.search_chunks
    retriever._store.search_chunks = lambda vector, k: [
        hit for hit in searched(vector, k) if hit[0] != matsu
    ]
    retrieval = retriever.retrieve(question, 3)
    own = store.passages_of([matsu])[matsu]
    vector = retrieval.query_vector
    expected = (max(own.sentence_vectors @ vector) + max(own.window_vectors @ vector)) / 2
    assert retrieval.chunks[0].article_id == "matsu.md"
    assert retrieval.similarities[matsu] == pytest.approx(expected, abs=1e-6)

    dense = corpus.retriever(retrieval_config(mode="dense"))
    dense._store.search_chunks = retriever._store.search_chunks
    assert matsu not in dense.retrieve(question, 3).similarities
