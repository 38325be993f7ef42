from index.sentences import excerpt, paragraph_spans, sentence_spans


def _texts(text: str) -> list[str]:
    return [text[span.start : span.end] for span in sentence_spans(text)]


def test_chinese_sentences_end_at_full_width_terminators_and_keep_closing_quotes():
    text = "他說：「我們會贏。」然後離開了！真的嗎？是的；沒錯……好吧。"
    assert _texts(text) == [
        "他說：「我們會贏。」",
        "然後離開了！",
        "真的嗎？",
        "是的；",
        "沒錯……",
        "好吧。",
    ]


def test_english_sentences_skip_abbreviations_initials_and_decimals():
    text = "Mr. Smith met the U.S. envoy at 3.5 p.m. on Monday. Was it useful? Yes, very much so!"
    assert _texts(text) == [
        "Mr. Smith met the U.S. envoy at 3.5 p.m. on Monday.",
        "Was it useful?",
        "Yes, very much so!",
    ]


def test_short_attribution_joins_the_sentence_before_it():
    text = "模型包括通義千問（Qwen）。(美聯社)\n\n下一段。"
    assert _texts(text) == ["模型包括通義千問（Qwen）。(美聯社)", "下一段。"]


def test_paragraphs_and_line_breaks_are_boundaries_but_hard_wraps_are_not():
    wrapped = (
        "This sentence is long enough that the author's editor wrapped it onto\n"
        "the next line without ending it."
    )
    text = f"# Heading\n{wrapped}\n\nSecond paragraph."
    spans = sentence_spans(text)
    assert _texts(text) == ["# Heading", wrapped, "Second paragraph."]
    assert [span.paragraph for span in spans] == [0, 0, 1]


def test_spans_are_exact_offsets_into_the_original_text():
    text = "  第一句。  第二句！\n\n\u3000\nThird one.  "
    for span in sentence_spans(text):
        piece = text[span.start : span.end]
        assert piece == piece.strip()
        assert piece
    assert len(paragraph_spans(text)) == 2


def test_an_excerpt_is_in_passage_order_with_an_ellipsis_where_sentences_are_left_out():
    text = "First one.\nIt goes on here. Second one.\n\nThird one. Fourth one."
    spans = sentence_spans(text)
    assert _texts(text) == [
        "First one.",
        "It goes on here.",
        "Second one.",
        "Third one.",
        "Fourth one.",
    ]
    assert (
        excerpt(text, [spans[3], spans[0], spans[1]]) == "First one. It goes on here. … Third one."
    )
    chinese = "投資人擔心。\n查克柏格承諾\n投資。汪滔抱怨。"
    parts = sentence_spans(chinese)
    assert excerpt(chinese, parts) == "投資人擔心。查克柏格承諾投資。汪滔抱怨。"
    assert excerpt(chinese, [parts[-1], parts[0]]) == f"{chinese[: parts[0].end]} … 汪滔抱怨。"
