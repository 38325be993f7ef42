"""English words for Chinese text, from the bundled CC-CEDICT."""

from index.dictionary import english_stems, stem, translations


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


def test_english_stems_leave_out_stopwords():
    found = english_stems("How many tackles did he make?")
    assert found == {stem(word) for word in ("many", "tackles", "make")}
