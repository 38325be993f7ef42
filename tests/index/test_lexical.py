import bm25s
import numpy as np
import pytest

from index import lexical
from index.aliases import name_mentions
from index.lexical import LexicalIndex, LexicalSource, lexical_tokens, window_overlap


def built(texts: dict[str, str], version: str = "v1") -> LexicalIndex:
    return LexicalIndex.build(sources(texts, version))


def sources(texts: dict[str, str], version: str = "v1") -> list[LexicalSource]:
    return [LexicalSource(c, text, name_mentions(text), version) for c, text in texts.items()]


def test_chinese_is_folded_to_simplified_and_cut_into_bigrams():
    assert lexical_tokens("團隊訓練") == ["团队", "队训", "训练"]
    assert lexical_tokens("团队训练") == lexical_tokens("團隊訓練")


def test_latin_words_are_case_and_width_folded_without_stopwords():
    assert lexical_tokens("Ｇｅｍｍａ and the GPT-oss 2026") == ["gemma", "gpt", "oss", "2026"]


def test_mixed_text_keeps_order_and_lone_characters():
    assert lexical_tokens("在 Avocado 時") == ["在", "avocado", "时"]


def test_search_ranks_exact_terms_and_ignores_unknown_words(tmp_path):
    index = built(
        {
            "seed": "TBD 團隊擷取 Gemma 與通義千問",
            "sanskrit": "梵語的學術研究由德國學者開創",
            "bread": "台北麵包店得獎",
        }
    )
    assert index.search("Which models did TBD distill? 通义千问", 3)[0][0] == "seed"
    assert index.search("梵语研究", 3)[0][0] == "sanskrit"
    assert index.search("completely unrelated words", 3) == []

    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    assert loaded is not None
    assert sorted(loaded.chunk_ids) == ["bread", "sanskrit", "seed"]
    assert loaded.search("麵包", 3)[0][0] == "bread"


def test_missing_or_broken_saved_index_loads_as_none(tmp_path):
    assert LexicalIndex.load(tmp_path / "nothing") is None
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "citebot.json").write_text("{not json", encoding="utf-8")
    assert LexicalIndex.load(tmp_path / "broken") is None


def test_an_empty_index_answers_nothing():
    assert LexicalIndex.build([]).search("anything", 5) == []


def test_window_overlap_wants_the_question_words_in_one_place():
    text = "馬祖位於臺灣海峽。氣候寒冷。冬季多霧。夏季多颱風。島嶼共有三十六個。"
    together = window_overlap("冬季多霧", "馬祖", text)
    scattered = window_overlap("臺灣海峽的島嶼有幾個", "", text)
    assert together == 1.0
    assert 0 < scattered < 0.5, "海峽 and 島嶼 are four sentences apart"
    assert window_overlap("臺灣海峽的島嶼有幾個", "", text, sentences=5) > scattered
    assert window_overlap("", "馬祖", text) == 0.0


def test_equal_scores_rank_in_chunk_id_order_whatever_order_the_chunks_came_in():
    texts = {"b": "Avocado 模型", "a": "Avocado 模型", "c": "Avocado 模型"}
    forward = built(texts)
    backward = built(dict(reversed(texts.items())))
    assert [hit for hit, _ in forward.search("Avocado", 2)] == ["a", "b"]
    assert backward.search("Avocado", 3) == forward.search("Avocado", 3)


def test_the_alias_table_is_built_and_saved_with_the_index(tmp_path):
    index = built({"qwen": "阿里巴巴的通義千問（Qwen）模型也在其中。"})
    assert "通义千问" in index.aliases.expansions("Is Qwen used?")
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    assert loaded is not None
    assert loaded.aliases.expansions("Is Qwen used?") == index.aliases.expansions("Is Qwen used?")


def test_a_loaded_index_has_the_saved_alias_table_without_romanising_again(tmp_path, monkeypatch):
    index = built({"wang": "汪滔是資料標註公司的創辦人，查克柏格邀他加入。"})
    assert index.aliases.expansions("Who is Alexandr Wang?")
    index.save(tmp_path / "bm25")

    def no_pinyin(name):
        raise AssertionError(f"romanised {name} again")

    monkeypatch.setattr("index.aliases._pinyin", no_pinyin)
    loaded = LexicalIndex.load(tmp_path / "bm25")
    assert loaded is not None
    assert loaded.aliases.to_json() == index.aliases.to_json()


def test_scores_are_those_of_bm25s_own_search():
    texts = {
        "a": "TBD Lab 訓練 Avocado，擷取 Gemma 與 Qwen 的能力。Avocado 是閉源模型。",
        "b": "The Avocado model is closed; Meta's TBD Lab trains it on Gemma outputs.",
        "c": "台北的麵包店以酪梨（avocado）吐司得獎。",
    }
    index = built(texts)
    vocabulary: dict[str, int] = {}
    corpus = [
        [vocabulary.setdefault(t, len(vocabulary)) for t in lexical_tokens(text)]
        for text in texts.values()
    ]
    model = bm25s.BM25()
    model.index(bm25s.tokenization.Tokenized(ids=corpus, vocab=vocabulary), show_progress=False)
    query = "Avocado avocado 模型 Gemma"
    expected = model.get_scores([vocabulary[t] for t in lexical_tokens(query) if t in vocabulary])
    assert dict(index.search(query, 3)) == pytest.approx(
        {chunk_id: float(score) for chunk_id, score in zip(texts, expected, strict=True)},
        rel=1e-6,
    )


CORPUS = {
    "a": "TBD Lab 訓練 Avocado，擷取 Gemma 與 Qwen 的能力。",
    "b": "The Avocado model is closed; Meta's TBD Lab trains it.",
    "c": "台北的麵包店以酪梨（avocado）吐司得獎。",
    "d": "梵語的學術研究由德國學者開創。",
    "e": "馬祖列島由36個島嶼組成，冬季多霧。",
}
QUERIES = ["Avocado 模型", "梵语研究", "麵包 avocado", "TBD Lab Gemma", "島嶼 冬季", "Qwen"]


def results(index: LexicalIndex) -> list:
    return [index.search(query, 4) for query in QUERIES]


def test_an_update_equals_a_build_of_the_new_chunks():
    """Chunks removed, added and changed (same id, new article version): the updated index
    ranks and scores as one built from scratch, and tokenizes only what changed."""
    before = built(CORPUS)
    after = {key: text for key, text in CORPUS.items() if key != "d"}
    after["f"] = "Avocado 的訓練擷取了 Gemma 與 Qwen。"
    after["c"] = "台北的麵包店改以芒果（mango）吐司得獎。"
    live = {key: "v2" if key == "c" else "v1" for key in after}
    assert sorted(before.missing(live)) == ["c", "f"]
    fresh = [
        LexicalSource(key, after[key], name_mentions(after[key]), live[key]) for key in ("c", "f")
    ]
    updated = before.updated(live, fresh)
    rebuilt = LexicalIndex.build(
        [LexicalSource(k, t, name_mentions(t), live[k]) for k, t in after.items()]
    )
    assert sorted(updated.chunk_ids) == sorted(after)
    for got, want in zip(results(updated), results(rebuilt), strict=True):
        assert [hit for hit, _ in got] == [hit for hit, _ in want]
        assert [score for _, score in got] == pytest.approx([s for _, s in want], rel=1e-6)
    assert updated.coverage("梵语") == 0.0, "a token no chunk holds any more is gone"
    assert updated.aliases.expansions("Is Mango sold?") == ["芒果"]
    assert updated.aliases.expansions("Is Avocado sold?") == []


def test_an_update_takes_only_chunks_it_lacks_and_leaves_out_those_not_given():
    index = built(CORPUS)
    live = {key: "v1" for key in CORPUS} | {"new": "v1"}
    held = next(iter(CORPUS))
    with pytest.raises(ValueError, match="not a chunk this index lacks"):
        index.updated(live, [LexicalSource(held, CORPUS[held], name_mentions(""), "v1")])
    twice = [LexicalSource("new", "梵语", name_mentions(""), "v1")] * 2
    with pytest.raises(ValueError, match="came twice"):
        index.updated(live, twice)
    assert index.updated(live, []) is index, "a chunk the store lacks is left out"
    assert index.updated(live, iter(twice[:1])).coverage("梵语") == 1.0


def test_an_updated_index_survives_saving_and_updates_again(tmp_path):
    index = built(CORPUS)
    index.save(tmp_path / "g1")
    loaded = LexicalIndex.load(tmp_path / "g1")
    assert loaded is not None
    assert results(loaded) == results(index)
    live = {key: "v1" for key in CORPUS if key != "a"}
    again = loaded.updated(live, [])
    assert "a" not in again.chunk_ids
    assert np.isclose(
        again.search("TBD Lab", 3)[0][1],
        built({k: t for k, t in CORPUS.items() if k != "a"}).search("TBD Lab", 3)[0][1],
    )


def test_a_save_killed_between_its_two_files_does_not_load(tmp_path):
    built(CORPUS).save(tmp_path / "g1")
    postings = (tmp_path / "g1" / "postings.npz").read_bytes()
    built({key: f"另一篇文章 {key}" for key in CORPUS}).save(tmp_path / "g1")  # as many chunks
    (tmp_path / "g1" / "postings.npz").write_bytes(postings)  # the new meta beside old postings
    assert LexicalIndex.load(tmp_path / "g1") is None


def test_postings_are_the_same_however_many_chunks_are_sorted_at_once(monkeypatch):
    """A build or update sorts new chunks into place a block at a time: blocks of 7 chunks
    give the arrays one block gives, and an update of them scores as a fresh build."""
    words = ["avocado", "gemma", "qwen", "模型", "訓練", "島嶼", "冬季", "mango", "lab", "meta"]
    rng = np.random.default_rng(5)
    texts = {f"c{n:03d}": " ".join(rng.choice(words, rng.integers(1, 12))) for n in range(300)}
    whole = built(texts)
    monkeypatch.setattr(lexical, "_BLOCK_CHUNKS", 7)
    blocks = built(texts)
    for name in ("counts", "indices", "indptr", "lengths"):
        assert np.array_equal(getattr(whole._postings, name), getattr(blocks._postings, name))

    after = {key: text for n, (key, text) in enumerate(texts.items()) if n % 3}
    after |= {f"n{n:03d}": " ".join(rng.choice(words, 5)) for n in range(40)}
    live = dict.fromkeys(after, "v1")
    updated = blocks.updated(live, sources({k: after[k] for k in blocks.missing(live)}))
    monkeypatch.setattr(lexical, "_BLOCK_CHUNKS", 10**6)
    rebuilt = built(after)
    for query in ["avocado 模型", "qwen lab", "冬季 mango meta"]:
        got, want = updated.search(query, 20), rebuilt.search(query, 20)
        assert [score for _, score in got] == pytest.approx([s for _, s in want], rel=1e-6)
        assert {hit for hit, _ in got} == {hit for hit, _ in want}
