"""The alias table: other-script spellings of names, derived from chunk texts alone."""

from index.aliases import build_aliases, latin_names

ARTICLE = (
    "TBD 團隊擷取（distill）第三方模型，包括阿里巴巴旗下的通義千問（Qwen）。"
    "Meta 新上任的 AI 長汪滔就是封閉式模型的支持者。汪滔有時認為查克柏格過度介入。"
    "輝達（NVIDIA）黃仁勳本月直言。"
)


def test_a_bracketed_latin_gloss_names_the_chinese_term_before_it():
    table = build_aliases([ARTICLE])
    assert table.expansions("Did Meta use Qwen?") == ["通义千问"]
    assert table.expansions("What did NVIDIA say?") == ["辉达"]
    assert table.expansions("通義千問是誰開發的？") == ["qwen"]


def test_a_romanised_surname_finds_the_chinese_person_it_may_be():
    table = build_aliases([ARTICLE])
    assert table.expansions("Who is Alexandr Wang?") == ["汪滔"]
    assert table.expansions("Who is Wang Tao?") == ["汪滔"]


def test_names_the_articles_already_write_or_common_surnames_add_nothing():
    table = build_aliases([ARTICLE])
    assert table.expansions("Did Meta use Qwen?", known=["qwen"]) == []
    namesakes = build_aliases([ARTICLE, "王安石是宋朝人。王維是唐朝詩人。"])
    assert namesakes.expansions("Who is Alexandr Wang?") == []


def test_latin_names_skip_the_question_word():
    assert latin_names("Who is Alexandr Wang?") == ["Alexandr Wang"]
    assert latin_names("How much did Meta invest?") == ["Meta"]
