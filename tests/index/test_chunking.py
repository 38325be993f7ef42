import itertools

import pytest

from index.chunking import Chunker, ChunkingConfig, passage_with_title
from index.sentences import sentence_spans

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
    chunker = Chunker(e5.count_tokens, e5.max_tokens, ChunkingConfig(max_tokens=80))
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
