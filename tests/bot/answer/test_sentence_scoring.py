"""The signals the sentence scorer reads, on hand-made candidates."""

import numpy as np

from bot.answer.sentence_scoring import (
    FEATURES,
    Candidate,
    Question,
    SentenceScorer,
    features,
    question_names,
)
from index.store import StoredChunk


def _candidate(text: str, vector, previous: str = "") -> Candidate:
    chunk = StoredChunk("c", "a.md", text, "t", None, None, "/a.md", 0, 0, len(text), 0.5)
    return Candidate(chunk, text, np.asarray(vector, dtype=float), previous)


def test_a_when_question_prefers_the_sentence_stating_a_time():
    asked = Question.of("When is Avocado expected to launch?", np.array([1.0, 0.0]))
    rows = features(
        asked,
        [
            _candidate("代號「Avocado」新模型預計明年春季亮相。", [0.8, 0.6]),
            _candidate("投資人對此頗感卻步。", [0.9, 0.1]),
        ],
    )
    column = FEATURES.index("asked_type")
    assert rows[0, column] == 1.0
    assert rows[1, column] == 0.0
    assert rows[0, FEATURES.index("names")] == 1.0  # "Avocado"
    assert rows[1, FEATURES.index("similarity")] == 0.0  # relative to the best


def test_a_time_said_from_today_is_a_time():
    asked = Question.of("When will power be restored?", np.array([1.0, 0.0]))
    stated = [
        "台電預計明天晚上前恢復九成供電。",
        "市議會將在下個月審查。",
        "工程預計年底完工。",
        "The board will vote on Monday.",
        "Repairs should end next week.",
    ]
    unstated = ["台電已調派 2,000 名搶修人員。", "Crews are working around the clock."]
    rows = features(asked, [_candidate(text, [1.0, 0.0]) for text in stated + unstated])
    column = rows[:, FEATURES.index("asked_type")].tolist()
    assert column == [1.0] * len(stated) + [0.0] * len(unstated)


def test_how_long_asks_for_a_number_a_length_or_a_duration():
    found = [
        _candidate("大橋全長 1.2 公里。", [0.8, 0.6]),
        _candidate("大橋在今年春季通車。", [0.9, 0.1]),
    ]
    for question in ("How long is the bridge?", "How long did the work last?"):
        rows = features(Question.of(question, np.array([1.0, 0.0])), found)
        assert rows[:, FEATURES.index("asked_type")].tolist() == [1.0, 0.0]


def test_an_english_word_is_found_in_the_chinese_word_it_translates_to():
    asked = Question.of("How much did Meta invest?", np.array([1.0, 0.0]))
    rows = features(
        asked,
        [
            _candidate("Meta 先前向 Scale AI 投資約 143 億美元。", [0.9, 0.1]),
            _candidate("Meta 的策略在今年初急轉彎。", [0.9, 0.1]),
            _candidate("汪滔是資料標註公司的創辦人。", [0.9, 0.1]),
        ],
    )
    overlap = rows[:, FEATURES.index("overlap")]
    # "invest" (投資) sets the first apart; "meta", written by two of three, counts for less.
    assert overlap[0] > overlap[1] > overlap[2] == 0.0


def test_a_chinese_word_is_found_in_the_english_words_it_translates_to():
    asked = Question.of("Meta 投資了哪家公司？", np.array([1.0, 0.0]))
    rows = features(
        asked,
        [
            _candidate("Meta invested 14.3 billion dollars in Scale AI.", [0.9, 0.1]),
            _candidate("Meta changed its strategy this spring.", [0.9, 0.1]),
        ],
    )
    overlap = rows[:, FEATURES.index("overlap")]
    assert overlap[0] > overlap[1] == 0.0  # 投資 is "invest"; Meta, which both write, counts nil


def test_an_other_script_spelling_counts_as_the_name():
    spellings = {"alexandr wang": ["汪滔"]}
    asked = Question.of("Who is Alexandr Wang?", np.array([1.0, 0.0]), spellings)
    rows = features(
        asked,
        [
            _candidate("汪滔是資料標註公司的創辦人。", [1, 0]),
            _candidate("他很忙。", [1, 0], previous="汪滔是資料標註公司的創辦人。"),
            _candidate("他很忙。", [1, 0]),
            _candidate("汪滔（Alexandr Wang）是創辦人。", [1, 0]),
        ],
    )
    # 汪滔 writes both "alexandr" and "wang", as the gloss that spells them out does (in the
    # second, by the sentence before it, which says who "he" is).
    assert rows[:, FEATURES.index("names")].tolist() == [1.0, 1.0, 0.0, 1.0]
    overlap = rows[:, FEATURES.index("overlap")]
    assert overlap[0] == overlap[3] > overlap[1] == overlap[2] == 0.0


def test_a_chinese_term_with_a_latin_spelling_is_one_of_the_question_s_names():
    asked = Question.of("通義千問是誰開發的？", np.array([1.0, 0.0]), {"通义千问": ["qwen"]})
    rows = features(
        asked,
        [_candidate("Qwen 由阿里巴巴開發。", [1, 0]), _candidate("模型由阿里巴巴開發。", [1, 0])],
    )
    assert rows[:, FEATURES.index("names")].tolist() == [1.0, 0.0]


def test_shares_sum_to_one_and_follow_the_weighted_signals():
    scorer = SentenceScorer(weights=(1.0, 0.0, 0.0, 0.0))
    shares = scorer.shares(np.array([[0.0] * 4, [-1.0] + [0.0] * 3]))
    assert np.isclose(shares.sum(), 1.0)
    assert shares[0] > shares[1]


def test_question_names_leave_out_the_question_word():
    assert question_names("What models did TBD distill from?") == ("tbd",)
    assert question_names("Is Avocado open source?") == ("avocado",)


def test_the_window_signal_is_the_best_window_holding_the_sentence():
    asked = Question.of("Who leads the lab?", np.array([1.0, 0.0]))
    rows = features(
        asked,
        [
            # Its own vector is off the question, but read with its neighbour it answers.
            Candidate(*_parts("他負責這個實驗室。", [0.6, 0.8]), windows=np.array([[1.0, 0.0]])),
            Candidate(*_parts("實驗室位於加州。", [0.8, 0.6]), windows=np.array([[0.6, 0.8]])),
            _candidate("沒有窗口的句子。", [0.0, 1.0]),  # no windows: its own vector
        ],
    )
    assert rows[:, FEATURES.index("window")].tolist() == [0.0, -0.4, -1.0]


def test_the_top_signals_mark_the_best_on_words_and_on_similarity_of_those_that_can_answer():
    found = [
        _candidate("Meta 先前向 Scale AI 投資約 143 億美元。", [0.6, 0.8]),
        _candidate("Meta 的投資策略在今年初急轉彎。", [1.0, 0.0]),
        _candidate("汪滔是資料標註公司的創辦人。", [0.8, 0.6]),
    ]
    rows = features(Question.of("What did Meta invest in?", np.array([1.0, 0.0])), found)
    assert rows[:, FEATURES.index("most_words")].tolist() == [1.0, 1.0, 0.0]
    assert rows[:, FEATURES.index("nearest")].tolist() == [0.0, 1.0, 0.0]
    # "How much" asks for an amount: the nearest of the sentences that state one.
    rows = features(Question.of("How much did Meta invest?", np.array([1.0, 0.0])), found)
    assert rows[:, FEATURES.index("most_words")].tolist() == [1.0, 0.0, 0.0]
    assert rows[:, FEATURES.index("nearest")].tolist() == [1.0, 0.0, 0.0]
    # When no candidate writes a question word, all tie: the signal says nothing.
    none = features(Question.of("Who won?", np.array([1.0, 0.0])), found[1:])
    assert none[:, FEATURES.index("most_words")].tolist() == [1.0, 1.0]


def _parts(text: str, vector) -> tuple:
    candidate = _candidate(text, vector)
    return candidate.chunk, candidate.text, candidate.vector, candidate.previous
