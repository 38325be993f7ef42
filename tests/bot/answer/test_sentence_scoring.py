"""The signals the sentence scorer reads, on hand-made candidates."""

import numpy as np

from bot.answer.sentence_scoring import FEATURES, Candidate, Question, features, question_names
from index.store import StoredChunk


def _candidate(text: str, vector, rank: int = 0) -> Candidate:
    chunk = StoredChunk("c", "a.md", text, "t", None, None, "/a.md", 0, 0, len(text), 0.5)
    return Candidate(chunk, rank, 0, text, np.asarray(vector, dtype=float), ())


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


def test_question_names_leave_out_the_question_word():
    assert question_names("What models did TBD distill from?") == ("tbd",)
    assert question_names("Is Avocado open source?") == ("avocado",)
