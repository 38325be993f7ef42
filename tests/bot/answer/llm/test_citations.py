"""The citation check on hand-made passages: markers, names and numbers, folding, renumbering."""

from __future__ import annotations

from bot.answer.llm.citations import (
    CitationCheck,
    SentenceCheck,
    check_citations,
    renumber,
    supporting_quote,
)
from index.store import StoredChunk

DISTILL = (
    "知情人士表示，TBD 團隊在訓練 Avocado 時，同時擷取（distill）第三方模型，包括 Google 的 "
    "Gemma、OpenAI 的 gpt-oss，以及阿里巴巴旗下的通義千問（Qwen）。"
    "查克柏格承諾，未來三年將投入6,000億美元於美國的基礎設施計畫。"
)
METRO = "台北捷運環狀線北環段預計 2030 年底完工通車，全長約 15 公里，設有 14 座車站。"
BUBBLE_TEA = (
    "Bubble tea shops have opened in more than 30 European cities this year. "
    "A new shop in Berlin plans a sugar-free menu."
)


def passage(text: str, title: str = "News", date: str | None = "2025-12-11") -> StoredChunk:
    """A retrieved chunk with this text."""
    return StoredChunk(
        chunk_id=f"{title}#0",
        article_id=f"{title}.txt",
        text=text,
        title=title,
        date=date,
        url=None,
        path=f"articles/{title}.txt",
        ordinal=0,
        start=0,
        end=len(text),
        score=0.9,
    )


ZUCKERBERG = "查克柏格把自己定位成汪滔的導師，TBD Lab 成員的座位就在加州總公司他的辦公桌周圍。"
PASSAGES = [passage(DISTILL, "avocado"), passage(METRO, "metro"), passage(BUBBLE_TEA, "tea")]


def verdicts(answer: str) -> list[str]:
    """The verdict on each sentence of `answer` against PASSAGES."""
    return [check.verdict for check in check_citations(answer, PASSAGES)]


def test_names_and_numbers_found_in_the_cited_passage_are_supported() -> None:
    [check] = check_citations("TBD distilled Google's Gemma and Qwen in 2025 [1].", PASSAGES)

    assert check.verdict == "supported"
    assert check.cited == (1,)
    assert set(check.terms) >= {"TBD", "Google", "Gemma", "Qwen", "2025"}  # the date counts


def test_traditional_simplified_and_full_width_forms_match() -> None:
    answer = "据报道，TBD 蒸馏了「通义千问」和 Ｇｅｍｍａ。[1]环状线北环段预计２０３０年通车。[2]"

    [distill, metro] = check_citations(answer, PASSAGES)

    assert distill.verdict == "supported"
    assert "通义千问" in distill.terms
    assert "Gemma" in distill.terms
    assert metro.verdict == "supported"
    assert "2030" in metro.terms


def test_numbers_are_compared_by_value_across_scales_and_separators() -> None:
    assert verdicts("查克柏格 (Zuckerberg) pledged 600 billion dollars [1].") == ["supported"]
    assert verdicts("查克柏格承諾投入６，０００億美元。[1]") == ["supported"]
    assert verdicts("查克柏格 (Zuckerberg) pledged 700 billion dollars [1].") == ["unsupported"]


def test_a_claim_its_passage_does_not_support_is_dropped() -> None:
    [check] = check_citations("Shops opened in 45 European cities [3].", PASSAGES)
    assert check.verdict == "unsupported"
    assert check.missing == ("45",)
    # Same language as the passage: a name it does not contain is unsupported.
    assert verdicts("A new shop in Paris plans a sugar-free menu [3].") == ["unsupported"]
    # The right fact, the wrong passage.
    assert verdicts("TBD distilled Gemma [2].") == ["unsupported"]


def test_a_person_a_chinese_sentence_names_must_be_in_its_passage() -> None:
    [check] = check_citations("查克柏格在加州親自指導汪滔。[1]", [passage(ZUCKERBERG)])
    assert check.verdict == "supported"
    assert "汪滔" in check.terms
    [check] = check_citations("查克柏格在加州親自指導黃仁勳。[1]", [passage(ZUCKERBERG)])
    assert check.verdict == "unsupported"
    assert "黄仁勋" in check.missing


def test_a_name_missing_from_a_passage_in_another_language_is_kept_as_unverified() -> None:
    [check] = check_citations("TBD also distilled Claude [1].", PASSAGES)

    assert check.verdict == "unverified"
    assert check.kept
    assert check.missing == ("Claude",)


def test_a_translation_after_a_name_written_as_in_the_passage_is_accepted() -> None:
    [check] = check_citations("TBD used Qwen from 阿里巴巴 (Alibaba) [1].", PASSAGES)

    assert check.verdict == "supported"
    assert verdicts("TBD used Qwen from 騰訊 (Tencent) [1].") == ["unverified"]


def test_sentences_without_a_valid_citation_are_uncited() -> None:
    checks = check_citations(
        "Here is what I found. TBD distilled Gemma [4]. Qwen too [1].", PASSAGES
    )

    assert [check.verdict for check in checks] == ["uncited", "uncited", "supported"]
    assert checks[1].out_of_range == (4,)


def test_a_marker_after_the_full_stop_belongs_to_the_sentence_before() -> None:
    checks = check_citations("TBD distilled Gemma. [1] The line has 14 stations. [2]", PASSAGES)

    assert [check.cited for check in checks] == [(1,), (2,)]
    assert [check.verdict for check in checks] == ["supported", "supported"]
    [wide] = check_citations("環狀線預計 2030 年通車【2，1】。", PASSAGES)
    assert wide.cited == (2, 1)


def test_kept_sentences_are_renumbered_by_first_use_and_bad_markers_removed() -> None:
    answer = (
        "The line has 14 stations [2][7]. Shops opened in 45 cities [3]. "
        "TBD distilled Gemma [1][2]. It opens in 2030 [2]."
    )
    check = CitationCheck(check_citations(answer, PASSAGES))

    text, cited = renumber(check.kept)

    assert text == "The line has 14 stations [1]. TBD distilled Gemma [2][1]. It opens in 2030 [1]."
    assert cited == [2, 1]
    assert check.passes


def test_sentences_on_separate_lines_stay_on_separate_lines() -> None:
    checks = check_citations("- TBD distilled Gemma [1]\n- The line has 14 stations [2]", PASSAGES)

    assert renumber(checks)[0] == "- TBD distilled Gemma [1]\n- The line has 14 stations [2]"


def test_too_little_surviving_fails_the_check() -> None:
    def check(*kept: bool) -> CitationCheck:
        return CitationCheck(
            [
                SentenceCheck("s", 0, (1,), (), (), (), "supported" if ok else "uncited")
                for ok in kept
            ]
        )

    assert check(True, False).passes
    assert not check(True, False, False).passes
    assert not check().passes
    assert not CitationCheck(check(True).sentences, leaked_instructions=True).passes


def test_the_quote_is_the_passage_sentence_stating_the_terms() -> None:
    avocado = PASSAGES[0]

    assert supporting_quote(avocado, ["Gemma", "Qwen"]).startswith("知情人士表示")
    assert supporting_quote(avocado, ["Gemma", "Qwen"]).endswith("（Qwen）。")
    assert supporting_quote(avocado, ["6,000億"]).startswith("查克柏格承諾")
    assert supporting_quote(avocado, []) == DISTILL
