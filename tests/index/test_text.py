"""The one rule for "this text is Chinese", and loose comparison of text."""

from bot.answer.llm.text import language_of
from index.text import fold, mostly_chinese, unwrap, writes_chinese


def test_a_text_writes_chinese_when_a_third_of_its_letters_are_cjk():
    assert writes_chinese("馬祖列島由幾個島嶼組成？")
    assert writes_chinese("TBD 團隊擷取了 Gemma")
    assert not writes_chinese("Which models did TBD distill from 通義千問?")
    assert not writes_chinese("12345 !?")


def test_articles_write_chinese_when_most_of_their_chunks_do():
    assert mostly_chinese(["馬祖列島由36個島嶼組成。", "儒略日是天文學的計時法。", "A bakery won."])
    assert not mostly_chinese(["馬祖列島由36個島嶼組成。", "A bakery won.", "Buns sold out."])
    assert not mostly_chinese(["馬祖列島由36個島嶼組成。", "A bakery won."])
    assert not mostly_chinese([])


def test_the_prompts_language_follows_the_same_rule():
    assert language_of("TBD 團隊擷取了 Gemma") == "zh"
    assert language_of("Which models did TBD distill from 通義千問?") == "en"


def test_folding_ignores_width_case_and_traditional_forms():
    assert fold("團隊 ＱＷＥＮ") == fold("团队 qwen") == "团队 qwen"


def test_unwrap_joins_lines_with_a_space_or_nothing_between_chinese_characters():
    assert unwrap("used in Taiwan,\nHong Kong and Macau.") == "used in Taiwan, Hong Kong and Macau."
    assert (
        unwrap("繁體字在台灣、\n  香港使用。\n\n簡體字在中國。")
        == "繁體字在台灣、香港使用。簡體字在中國。"
    )
    assert unwrap("Meta 投資\nScale AI。") == "Meta 投資 Scale AI。"
    assert unwrap("one line, as it was") == "one line, as it was"
