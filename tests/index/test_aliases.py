"""The alias table: other-script spellings of names, derived from chunk texts alone."""

import pytest

from index.aliases import NameMentions, build_aliases, latin_names, name_mentions

ARTICLE = (
    "TBD 團隊擷取（distill）第三方模型，包括阿里巴巴旗下的通義千問（Qwen）。"
    "Meta 新上任的 AI 長汪滔就是封閉式模型的支持者。汪滔有時認為查克柏格過度介入。"
    "輝達（NVIDIA）黃仁勳本月直言。"
)


def table_of(*texts: str):
    return build_aliases(name_mentions(text) for text in texts)


def test_a_bracketed_latin_gloss_names_the_chinese_term_before_it():
    table = table_of(ARTICLE)
    assert table.expansions("Did Meta use Qwen?") == ["通义千问"]
    assert table.expansions("What did NVIDIA say?") == ["辉达"]
    assert table.expansions("通義千問是誰開發的？") == ["qwen"]


def test_a_gloss_names_the_person_not_the_title_before_them():
    table = table_of("Meta 首席 AI 官汪滔（Alexandr Wang）主張採用封閉式模型。")
    assert table.expansions("Who is Alexandr Wang?") == ["汪滔"]


def test_spellings_say_which_name_each_spelling_is_for():
    table = table_of(ARTICLE)
    assert table.spellings("Did Alexandr Wang use Qwen?") == {
        "alexandr wang": ["汪滔"],
        "qwen": ["通义千问"],
    }
    assert table.spellings("通義千問是誰開發的？") == {"通义千问": ["qwen"]}


def test_a_romanised_surname_finds_the_chinese_person_it_may_be():
    table = table_of(ARTICLE)
    assert table.expansions("Who is Alexandr Wang?") == ["汪滔"]
    assert table.expansions("Who is Wang Tao?") == ["汪滔"]


def test_names_the_articles_already_write_or_common_surnames_add_nothing():
    table = table_of(ARTICLE)
    assert table.expansions("Did Meta use Qwen?", known=["qwen"]) == []
    namesakes = table_of(ARTICLE, "王安石是宋朝人。王維是唐朝詩人。")
    assert namesakes.expansions("Who is Alexandr Wang?") == []


def test_latin_names_skip_the_question_word():
    assert latin_names("Who is Alexandr Wang?") == ["Alexandr Wang"]
    assert latin_names("How much did Meta invest?") == ["Meta"]


def test_mentions_survive_their_stored_form_and_merge_like_the_texts_they_came_from():
    stored = [NameMentions.from_text(name_mentions(text).to_text()) for text in ARTICLE.split("。")]
    assert build_aliases(stored) == table_of(*ARTICLE.split("。"))
    assert build_aliases(stored).expansions("Who is Alexandr Wang?") == ["汪滔"]


def test_every_mention_of_a_person_counts():
    mentions = name_mentions(ARTICLE)
    assert "汪滔" in mentions.people
    assert ("qwen", "通义千问") in mentions.glosses
    twice = build_aliases([mentions, mentions])
    assert twice.romanised["wang tao"]["汪滔"] == 2 * mentions.people.count("汪滔")


@pytest.mark.parametrize("text", ["", "[1]", '{"glosses": []}', "not json", "[[[1]], []]"])
def test_unreadable_stored_mentions_are_refused(text):
    with pytest.raises(ValueError, match="not name mentions"):
        NameMentions.from_text(text)
