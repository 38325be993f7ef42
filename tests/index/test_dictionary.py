"""English words for Chinese text, from the bundled CC-CEDICT."""

import os
import time

import pytest

from index import dictionary
from index.dictionary import chinese_words, english_stems, stem, translations


def test_inflections_share_a_stem():
    assert stem("tackles") == stem("tackle")
    assert stem("interceptions") == stem("intercept")
    assert stem("countries") == stem("country")
    assert stem("invested") == stem("invest") == stem("investing")


def test_chinese_words_translate_in_either_script():
    assert stem("invest") in translations("Meta 先前向 Scale AI 投資約 143 億美元")
    assert stem("invest") in translations("Meta 先前向 Scale AI 投资约 143 亿美元")
    assert stem("launch") in translations("以閉源方式推出")
    assert stem("invest") not in translations("汪滔是資料標註公司的創辦人")


def test_english_words_are_found_as_the_chinese_words_for_them():
    assert "桥梁" in chinese_words("bridges")  # by the stem, in Simplified
    assert "经理" in chinese_words("manager")
    assert "梵语" in chinese_words("Sanskrit".lower())
    assert "桥梁" not in chinese_words("manager")
    assert chinese_words("the") == ()  # a stopword translates to nothing


def test_english_stems_leave_out_stopwords():
    found = english_stems("How many tackles did he make?")
    assert found == {stem(word) for word in ("many", "tackles", "make")}


@pytest.fixture
def fresh_dictionary(monkeypatch):
    """The dictionary module as a new process finds it (no table read, no cache named)."""
    monkeypatch.setattr(dictionary, "_cache_folder", None)
    dictionary._definitions.cache_clear()
    dictionary._senses.cache_clear()
    yield
    dictionary._definitions.cache_clear()
    dictionary._senses.cache_clear()


def test_the_table_is_cached_and_read_back_the_same(tmp_path, fresh_dictionary):
    parsed = dictionary._definitions()
    dictionary._definitions.cache_clear()
    dictionary.use_cache(tmp_path)
    (tmp_path / "cedict-0-0123456789abcdef.marshal").write_bytes(b"an older dictionary's")
    assert dictionary._definitions() == parsed
    (cached,) = tmp_path.glob("cedict-*.marshal")  # the older one is gone
    dictionary._definitions.cache_clear()
    assert dictionary._definitions() == parsed  # read from the file
    cached.write_bytes(b"\x00 not a table")
    dictionary._definitions.cache_clear()
    assert dictionary._definitions() == parsed  # a damaged cache is parsed again and rewritten
    assert cached.read_bytes() != b"\x00 not a table"


def test_the_english_to_chinese_table_is_cached_beside_the_definitions(tmp_path, fresh_dictionary):
    built = dictionary._senses()
    dictionary._definitions.cache_clear()
    dictionary._senses.cache_clear()
    dictionary.use_cache(tmp_path)
    assert dictionary._senses() == built
    names = sorted(path.name.split("-")[1] for path in tmp_path.glob("cedict-*.marshal"))
    assert names == ["definitions", "senses"]  # writing one table keeps the other
    dictionary._definitions.cache_clear()
    dictionary._senses.cache_clear()
    assert dictionary._senses() == built  # read from the file


def test_an_unwritable_cache_only_costs_time(tmp_path, fresh_dictionary, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    dictionary.use_cache(blocked / "cache")
    assert stem("invest") in translations("投資約 143 億美元")
    assert "cannot cache the dictionary's definitions table" in caplog.text
    assert list(tmp_path.iterdir()) == [blocked]


def test_a_write_killed_before_its_rename_leaves_nothing_after_the_next(tmp_path, fresh_dictionary):
    dictionary.use_cache(tmp_path)
    dictionary._definitions()
    (cached,) = tmp_path.glob("cedict-*.marshal")
    cached.unlink()
    killed = tmp_path / f".{cached.name}.k1ll3d"
    killed.write_bytes(b"half a table")  # a write killed an hour ago
    os.utime(killed, (time.time() - 3600, time.time() - 3600))
    dictionary._definitions.cache_clear()
    dictionary._definitions()
    assert [path.name for path in tmp_path.iterdir()] == [cached.name]
