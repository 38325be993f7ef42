"""The metric definitions of shared/eval/README.md, on hand-made retrievals."""

from pathlib import Path

from bot.answer.extractive import Answer, Citation
from bot.evaluation import EvalQuestion, answer_first_hit, answer_hit, first_hit_rank
from index.store import StoredChunk

GOLD = Path("/corpus/articles/gold.md")


def _chunk(path: Path, text: str) -> StoredChunk:
    return StoredChunk("id", path.name, text, "t", None, None, str(path), 0, 0, len(text), 0.5)


QUESTION = EvalQuestion("q1", "哪一地區？", ["歐洲", "Europe"], GOLD, "zh-Hant")


def test_hit_needs_the_gold_article_and_the_answer_string():
    chunks = [
        _chunk(Path("/corpus/articles/other.md"), "歐洲的梵語研究"),  # answer, wrong article
        _chunk(GOLD, "梵語研究"),  # right article, no answer
        _chunk(GOLD, "在歐洲，梵語的學術研究"),
    ]
    assert first_hit_rank(chunks, QUESTION) == 3
    assert first_hit_rank(chunks[:2], QUESTION) is None


def test_answers_match_after_nfkc_normalisation():
    chunks = [_chunk(GOLD, "in Ｅｕｒｏｐｅ, the study")]
    assert first_hit_rank(chunks, QUESTION) == 1


def _answer(text: str, quote: str, abstained: bool = False) -> Answer:
    citation = Citation(1, "id", "gold.md", "t", None, None, str(GOLD), quote)
    return Answer("q", text, [] if abstained else [citation], [], abstained)


def test_answer_hit_counts_the_text_or_the_cited_quotes():
    assert answer_hit(_answer("In Europe [1]", "x"), QUESTION)
    assert answer_hit(_answer("See [1]", "梵語研究始於歐洲"), QUESTION)
    assert not answer_hit(_answer("In Asia [1]", "亞洲"), QUESTION)
    assert not answer_hit(_answer("Europe", "", abstained=True), QUESTION)


def _quoted(*quotes: str, abstained: bool = False) -> Answer:
    citation = Citation(1, "id", "gold.md", "t", None, None, str(GOLD), " ".join(quotes))
    return Answer("q", " ".join(quotes), [citation], [], abstained, quotes=quotes)


def test_answer_first_hit_needs_the_answer_in_the_first_quote():
    assert answer_first_hit(_quoted("梵語研究始於歐洲。", "其後傳入亞洲。"), QUESTION)
    second = _quoted("其後傳入亞洲。", "梵語研究始於歐洲。")
    assert answer_hit(second, QUESTION)
    assert not answer_first_hit(second, QUESTION)
    assert not answer_first_hit(_quoted("梵語研究始於歐洲。", abstained=True), QUESTION)
