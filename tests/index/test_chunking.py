import itertools
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.chunking import Chunker, ChunkingConfig, passage_with_title
from index.sentences import sentence_spans
from tests.helpers.settings import DEFAULTS

CHINESE_PARAGRAPH = (
    "知情人士表示，TBD 團隊在訓練 Avocado 時，同時擷取（distill）第三方模型，包括 Google 的 Gemma、"
    "OpenAI 的 gpt-oss，以及阿里巴巴旗下的通義千問（Qwen）。新模型訓練中採用中國大廠技術，也代表"
    "查克柏格的態度出現微妙轉變。今年1月，他在 Joe Rogan 的 podcast 上還曾表示，大陸模型可能受到"
    "政府審查影響。"
)
ENGLISH_PARAGRAPH = (
    "Meta's new model, code-named Avocado, is expected to debut next spring. It would be closed, "
    "meaning Meta would control it fully and sell access to it. That marks the biggest shift yet "
    "from the open-source strategy the company has championed for years. Sources say the new "
    "chief AI officer favours closed models."
)


def _article(paragraph: str, copies: int) -> str:
    return "\n\n".join(f"{index}. {paragraph}" for index in range(copies))


def _check_invariants(chunks, text, budget, count_tokens):
    assert chunks, "an article with text gives at least one chunk"
    sentence_starts = {span.start for span in sentence_spans(text)}
    for ordinal, chunk in enumerate(chunks):
        assert chunk.ordinal == ordinal
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.token_count == count_tokens(chunk.text) <= budget
        assert chunk.start in sentence_starts
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    for span in sentence_spans(text):
        assert span.start in covered, "no sentence is lost"
        assert span.end - 1 in covered, "no sentence is lost"
    assert len({chunk.id for chunk in chunks}) == len(chunks)


@pytest.mark.parametrize("paragraph", [CHINESE_PARAGRAPH, ENGLISH_PARAGRAPH])
def test_chunks_are_exact_sentence_aligned_slices_within_budget(e5, paragraph):
    text = _article(paragraph, 12)
    config = ChunkingConfig(max_tokens=120, overlap_tokens=30)
    chunks = Chunker(e5.count_tokens, e5.max_tokens, config).split("a.md", text)
    _check_invariants(chunks, text, 120, e5.count_tokens)
    assert len(chunks) > 3


def test_paragraphs_that_fit_are_kept_whole(e5):
    text = _article(CHINESE_PARAGRAPH, 6)
    paragraph_tokens = e5.count_tokens(text.split("\n\n")[0])
    config = ChunkingConfig(max_tokens=int(paragraph_tokens * 1.5), overlap_tokens=20)
    chunks = Chunker(e5.count_tokens, e5.max_tokens, config).split("a.md", text)
    paragraphs = text.split("\n\n")
    assert [chunk.text for chunk in chunks] == paragraphs


def test_a_split_paragraph_overlaps_by_whole_sentences(e5):
    text = CHINESE_PARAGRAPH * 4
    config = ChunkingConfig(max_tokens=90, overlap_tokens=40)
    chunks = Chunker(e5.count_tokens, e5.max_tokens, config).split("a.md", text)
    _check_invariants(chunks, text, 90, e5.count_tokens)
    overlapping = 0
    for before, after in itertools.pairwise(chunks):
        last_sentence = sentence_spans(before.text)[-1]
        last_tokens = e5.count_tokens(before.text[last_sentence.start :])
        assert (after.start < before.end) == (last_tokens <= 40)
        assert e5.count_tokens(text[after.start : before.end]) <= 40
        overlapping += after.start < before.end
    assert overlapping


def test_an_overlong_sentence_without_punctuation_is_cut_to_fit(e5):
    text = "模型" * 800 + "。短句。"
    config = ChunkingConfig(max_tokens=100, overlap_tokens=0)
    chunks = Chunker(e5.count_tokens, e5.max_tokens, config).split("a.md", text)
    assert "".join(chunk.text for chunk in chunks) == text
    assert all(0 < chunk.token_count <= 100 for chunk in chunks)


def test_the_budget_never_exceeds_what_the_model_reads(minilm):
    text = _article(ENGLISH_PARAGRAPH, 20)
    title = "Meta shifts to closed models"
    config = ChunkingConfig(max_tokens=4000, overlap_tokens=0)
    chunks = Chunker(minilm.count_tokens, minilm.max_tokens, config).split("a.md", text, title)
    assert minilm.max_tokens < 256
    for chunk in chunks:
        assert minilm.count_tokens(passage_with_title(title, chunk.text)) <= minilm.max_tokens


def test_chunk_ids_are_stable_and_depend_on_content(e5):
    chunker = Chunker(
        e5.count_tokens, e5.max_tokens, ChunkingConfig(max_tokens=80, overlap_tokens=48)
    )
    text = _article(ENGLISH_PARAGRAPH, 3)
    first = chunker.split("a.md", text)
    assert [c.id for c in first] == [c.id for c in chunker.split("a.md", text)]
    changed = chunker.split("a.md", text.replace("next spring", "next autumn", 1))
    assert first[0].id != changed[0].id
    assert first[-1].id == changed[-1].id


def test_repeated_paragraphs_get_distinct_ids(e5):
    paragraph = "知情人士表示，汪滔有時認為查克柏格「過度介入」感到不快。"
    budget = e5.count_tokens(paragraph) + 2  # one paragraph fits, two do not
    chunker = Chunker(e5.count_tokens, e5.max_tokens, ChunkingConfig(budget, 0))
    chunks = chunker.split("a.md", f"{paragraph}\n\n{paragraph}")
    assert [chunk.text for chunk in chunks] == [paragraph, paragraph]
    assert chunks[0].id != chunks[1].id


# Character pools for random text: what real and hostile articles are made of.
HANZI = "模型訓練資料台積電股價上漲颱風來襲汪滔查克柏格知情人士表示"
LATIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789éüñ"
CLAUSE_MARKS = "，、；：,;:"
SENTENCE_ENDS = "。！？.!?"
SPACES = " \n\t\u3000"
ZERO_WIDTH = "\u200b\u200c\u200d\ufeff\u2060"
OTHER = "😀\U00020000\u0301「」（）"
POOLS = {
    "no punctuation": HANZI,
    "only commas": HANZI + "，",
    "words and commas": LATIN + ", ",
    "mixed scripts": HANZI + LATIN + " ",
    "zero-width": HANZI + ZERO_WIDTH,
    "everything": HANZI + LATIN + CLAUSE_MARKS + SENTENCE_ENDS + SPACES + ZERO_WIDTH + OTHER,
}
ORDINARY = _article(CHINESE_PARAGRAPH + ENGLISH_PARAGRAPH, 400)


def _random_text(pool: str, size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=st.sampled_from(pool), min_size=1, max_size=size)


def _check_linear_invariants(chunks, text, budget, count_tokens):
    """What any text's chunks must satisfy: exact slices in order, within the budget, and every
    character that is not whitespace inside some chunk."""
    covered = bytearray(len(text))
    for ordinal, chunk in enumerate(chunks):
        assert chunk.ordinal == ordinal
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.text
        assert chunk.text == chunk.text.strip()
        assert chunk.token_count == count_tokens(chunk.text) <= budget
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
    missed = [n for n, char in enumerate(text) if not covered[n] and not char.isspace()]
    assert missed == [], "no character is lost"
    assert [chunk.start for chunk in chunks] == sorted(chunk.start for chunk in chunks)


def _chunk_seconds(chunker: Chunker, text: str) -> tuple[list, float]:
    started = time.process_time()
    chunks = chunker.split("a.md", text)
    return chunks, time.process_time() - started


@pytest.fixture(scope="module")
def ordinary_seconds(e5) -> Callable[[int], float]:
    """CPU seconds to chunk `size` characters of ordinary text, measured once per size."""
    chunker = Chunker(e5.count_tokens, e5.max_tokens, DEFAULTS.chunking)
    seconds: dict[int, float] = {}

    def measure(size: int) -> float:
        if size not in seconds:
            text = (ORDINARY * (size // len(ORDINARY) + 1))[:size]
            seconds[size] = _chunk_seconds(chunker, text)[1]
        return seconds[size]

    return measure


@pytest.mark.parametrize("pool", sorted(POOLS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), budget=st.integers(16, 96))
def test_any_text_chunks_into_exact_covering_slices_within_budget(e5, pool, data, budget):
    text = data.draw(_random_text(POOLS[pool], 1500))
    chunker = Chunker(e5.count_tokens, e5.max_tokens, ChunkingConfig(budget, budget // 4))
    _check_linear_invariants(chunker.split("a.md", text), text, budget, e5.count_tokens)


@pytest.mark.timeout(240)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(motif=_random_text(POOLS["everything"], 40), pool=st.sampled_from(sorted(POOLS)))
def test_long_text_of_any_punctuation_chunks_about_as_fast_as_ordinary_text(
    e5, ordinary_seconds, motif, pool
):
    # A repeated random motif makes sentences as long (or short) as its punctuation allows.
    size = 20_000
    text = ((motif + POOLS[pool][: len(motif) % 7]) * size)[:size]
    chunker = Chunker(e5.count_tokens, e5.max_tokens, DEFAULTS.chunking)
    chunks, seconds = _chunk_seconds(chunker, text)
    _check_linear_invariants(chunks, text, DEFAULTS.chunk_tokens, e5.count_tokens)
    assert seconds <= 5 * ordinary_seconds(size) + 0.05


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    "unit",
    ["模型訓練資料", "模型，", "Ab模,\u200d "],
    ids=["no punctuation", "only commas", "mixed"],
)
def test_200k_characters_chunk_in_time_linear_in_the_text(e5, ordinary_seconds, unit):
    size = 200_000
    text = (unit * (size // len(unit) + 1))[:size]
    chunker = Chunker(e5.count_tokens, e5.max_tokens, DEFAULTS.chunking)
    chunks, seconds = _chunk_seconds(chunker, text)
    _check_linear_invariants(chunks, text, DEFAULTS.chunk_tokens, e5.count_tokens)
    assert seconds <= 5 * ordinary_seconds(size) + 0.05
